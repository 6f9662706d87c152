"""``floe.Store`` and ``floe.Library``: ArcticDB's ``Arctic`` / ``Library`` API over the engine.

Each method converts its arguments (pandas -> Arrow, metadata -> envelope, ``as_of`` -> a tagged
tuple), calls the Rust extension (which releases the GIL for the engine call) and builds ArcticDB's
result types. Batch methods return a :class:`DataError` in the slot of an item that failed.
"""

from __future__ import annotations

import gc
import pickle
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from . import _convert, _envelope, _floe
from ._admin import AdminTools
from ._strings import StringFormats
from ._types import (
    CompactDataInfo,
    DataError,
    DeleteRequest,
    LibraryOptions,
    ModifiableLibraryOption,
    NameWithDType,
    OutputFormat,
    ReadInfoRequest,
    ReadRequest,
    SymbolDescription,
    StagedDataFinalizeMethod,
    StageResult,
    SymbolVersion,
    UpdatePayload,
    Verification,
    VersionedItem,
    VersionInfo,
    WriteMetadataPayload,
    WritePayload,
)
from .errors import FloeError, InvalidInput, NotFound, SnapshotNotFound, SymbolNotFound

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def _as_of(as_of: Any) -> Optional[Tuple[str, Any]]:
    """ArcticDB's ``as_of`` (None, version int, snapshot name, or a datetime) as the tagged tuple
    the extension takes."""
    if as_of is None:
        return None
    if isinstance(as_of, bool):
        raise InvalidInput("as_of must be a version number, a snapshot name or a datetime, not a bool")
    if isinstance(as_of, int) or (hasattr(as_of, "__index__") and not _convert.is_datetime_like(as_of)):
        return ("version", int(as_of))
    if isinstance(as_of, str):
        return ("snapshot", as_of)
    if _convert.is_datetime_like(as_of):
        return ("timestamp", _convert.timestamp_ns(as_of, "as_of"))
    raise InvalidInput(f"as_of {as_of!r} must be a version number, a snapshot name or a datetime")


def _date_range(date_range: Any) -> Optional[Tuple[Optional[int], Optional[int]]]:
    if date_range is None:
        return None
    try:
        start, end = date_range
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"date_range must be a (start, end) pair, got {date_range!r}") from e
    conv = lambda v, w: None if v is None or v is pd.NaT else _convert.timestamp_ns(v, w)  # noqa: E731
    return (conv(start, "date_range start"), conv(end, "date_range end"))


def _mutation_range(date_range: Any, what: str) -> Optional[Tuple[int, int]]:
    """The (start, end) range of an update or delete_data_in_range, open ends filled in; a range
    whose start is after its end is refused (it would select nothing, or everything around it)."""
    dr = _date_range(date_range)
    if dr is None:
        return None
    if dr[0] is not None and dr[1] is not None and dr[0] > dr[1]:
        raise InvalidInput(f"{what}: date_range starts at {_ts(dr[0])}, after its end {_ts(dr[1])}; pass (start, end)")
    return (_I64_MIN if dr[0] is None else dr[0], _I64_MAX if dr[1] is None else dr[1])


_OPENING = 'opening store "'
_SECRET_VALUE = re.compile(r"((?:secret|access)=)[^&\"\s]*", re.IGNORECASE)


def _hide_query(message: str, uri: Any) -> str:
    """``message`` with the URI the extension quotes at its start (``opening store "<uri>": ...``)
    shown without its query string, where S3 credentials live, as the engine's own messages do;
    any ``secret=`` / ``access=`` value left elsewhere is hidden too."""
    if message.startswith(_OPENING) and isinstance(uri, str):
        # The URI is quoted with Rust's Debug escapes: find the closing quote.
        i, escaped = len(_OPENING), False
        while i < len(message) and (escaped or message[i] != '"'):
            escaped = not escaped and message[i] == "\\"
            i += 1
        shown = uri.split("?", 1)[0] + ("?<options hidden>" if "?" in uri else "")
        message = f"{_OPENING}{shown}{message[i:]}"
    return _SECRET_VALUE.sub(r"\1<hidden>", message)


def _row_range(row_range: Any) -> Optional[Tuple[int, int]]:
    if row_range is None:
        return None
    try:
        start, end = row_range
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"row_range must be a (start, end) pair, got {row_range!r}") from e
    return (0 if start is None else int(start), _I64_MAX if end is None else int(end))


def _ts(ns: Optional[int]) -> Optional[pd.Timestamp]:
    return None if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC")


def _timestamps(ns: np.ndarray) -> List[pd.Timestamp]:
    """``pd.Timestamp`` objects (UTC, unit ns) of an int64 array of ns since the epoch, made in one
    conversion of the whole array rather than a constructor call per value (4 us each). Even so the
    objects cost ~0.45 us each: most of ``list_versions``' time at thousands of versions."""
    if len(ns) == 0:
        return []
    return list(pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]"), tz="UTC"))


def _segment_size(n: Optional[int]) -> Optional[int]:
    """A rows-per-segment argument: None (the library's) or a positive int."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise InvalidInput(f"rows per segment must be a positive integer, not {n!r}")
    return int(n)


def _data_error(symbol: str, exc: BaseException, as_of: Any = None) -> DataError:
    request = None if as_of is None else ("snapshot" if isinstance(as_of, str) else "version" if isinstance(as_of, int) else "timestamp")
    return DataError(
        symbol=symbol,
        version_request_type=request,
        version_request_data=as_of,
        error_code=type(exc).__name__,
        error_category=next((c.__name__ for c in type(exc).__mro__[1:] if c is not FloeError and issubclass(c, FloeError)), type(exc).__name__),
        exception_string=str(exc),
        exception=exc,
    )


#: pyarrow schemas of the extension's read tables by schema id: an id names one schema for the life of
#: the process, so a read imports only its batch against the schema kept here, not its schema afresh
#: (a quarter of a small read's cost with cold caches; design/decisions.md D62). At most
#: ``_MAX_SCHEMAS``, then cleared (a process reading ever-new schemas).
_SCHEMAS: Dict[int, pa.Schema] = {}
_MAX_SCHEMAS = 1024
#: The output formats as ``OutputFormat.parse`` returns them (a given one skips the parse; a tuple,
#: as an unhashable argument must reach the parse's error).
_OUTPUT_FORMATS = (OutputFormat.PANDAS, OutputFormat.PYARROW, OutputFormat.POLARS)


def _read_table(t: Tuple[int, Optional[int], Any]) -> pa.Table:
    """The pyarrow table of a read's ``(schema id, address of the batch's C struct array, ReadTable)``
    (the extension's), its buffers taken over without a copy."""
    schema_id, address, table = t
    if address is None:  # no columns: the stream keeps the row count
        return pa.table(table)
    schema = _SCHEMAS.get(schema_id)
    if schema is None:
        if len(_SCHEMAS) >= _MAX_SCHEMAS:
            _SCHEMAS.clear()
        schema = _SCHEMAS[schema_id] = pa.schema(table)
    return pa.Table.from_batches([pa.RecordBatch._import_from_c(address, schema)], schema)


#: The column a pickled object is stored in (``write_pickle``), as one large-binary value.
PICKLE_COLUMN = "pickle"


def _pickled(data: Any, metadata: Any) -> Tuple[pa.Table, bytes]:
    """``data`` pickled into a one-row table, and its envelope (normalization record ``{"kind":
    "pickle"}``). InvalidInput if it cannot be pickled."""
    try:
        payload = pickle.dumps(data, protocol=5)
    except Exception as e:  # pickling runs arbitrary __reduce__ code: any error means "cannot pickle"
        raise InvalidInput(f"cannot pickle an object of type {type(data).__module__}.{type(data).__name__}: {e}") from e
    table = pa.table({PICKLE_COLUMN: pa.array([payload], type=pa.large_binary())})
    return table, _envelope.encode({"kind": "pickle"}, metadata, metadata is not None)


def _format_or_none(value: Optional[str], default: str) -> Optional[str]:
    """The output format ``value`` names, or None if it names none."""
    try:
        return OutputFormat.parse(value, default)
    except FloeError:
        return None


def _unpickled(table: pa.Table, symbol: str) -> Any:
    """The object a ``write_pickle`` version holds; InvalidInput for a partial read of one."""
    if table.num_rows != 1 or table.column_names != [PICKLE_COLUMN]:
        raise InvalidInput(
            f'symbol "{symbol}" holds a pickled object (write_pickle): read it whole, without date_range, row_range '
            "or columns"
        )
    return pickle.loads(table.column(0)[0].as_buffer())


def _refuse_pickled(env: Optional[_envelope.Envelope], what: str, symbol: str) -> None:
    """InvalidInput if ``env`` (a symbol's newest version) holds a pickled object: rows cannot be added
    to it or replaced in it."""
    if env is not None and env.norm and env.norm.get("kind") == "pickle":
        raise InvalidInput(f'{what} "{symbol}": the symbol holds a pickled object (write_pickle); write it again instead')


def _refuse_unsupported(what: str, query_builder: Any = None, lazy: bool = False) -> None:
    """InvalidInput for ArcticDB read arguments Floe does not implement, naming them and what to do
    instead, rather than a TypeError about an unknown keyword (the defaults pass)."""
    if query_builder is not None:
        raise InvalidInput(
            f"{what}: query_builder is not supported; read with date_range, row_range and columns, then filter "
            "the result (output_format='polars' or 'pyarrow' keep it columnar)"
        )
    if lazy:
        raise InvalidInput(f"{what}: lazy reads are not supported; use iter_batches to stream a read")


def _stage_result(symbol: str, token: bytes, rows: int, date_range: Optional[Tuple[int, int]]) -> StageResult:
    dr = None if date_range is None else (_ts(date_range[0]), _ts(date_range[1]))
    return StageResult(symbol, token, rows, dr)


def _tokens(symbol: str, stage_results: Optional[List[StageResult]]) -> Optional[List[bytes]]:
    """The tokens of ``stage_results`` (checked to be ``symbol``'s), or None for every chunk."""
    if stage_results is None:
        return None
    out = []
    for r in stage_results:
        if not isinstance(r, StageResult):
            raise InvalidInput(f"stage_results must hold what stage() returned, not {type(r).__name__}")
        if r.symbol != symbol:
            raise InvalidInput(f'a stage result of symbol "{r.symbol}" passed for symbol "{symbol}"')
        out.append(r.token)
    return out


def _payloads(items: Sequence[Any], kind: Any, shape: str) -> list:
    """``items`` as ``kind`` NamedTuples (plain tuples accepted), each symbol at most once."""
    try:
        payloads = [p if isinstance(p, kind) else kind(*p) for p in items]
    except TypeError as e:
        raise InvalidInput(f"batch items must be {shape}: {e}") from e
    symbols = [p.symbol for p in payloads]
    dups = sorted({s for s in symbols if symbols.count(s) > 1})
    if dups:
        raise InvalidInput(f"symbols appear more than once in the batch: {dups}")
    return payloads


def _each(items: Sequence[Any], call: Callable[[Any], Any], symbol_of: Callable[[Any], str]) -> list:
    """``call(item)`` for every item, a few at a time on threads (the engine releases the GIL while it
    works), results in order; an item whose call raises a FloeError gets a DataError in its slot."""

    def one(item: Any) -> Any:
        try:
            return call(item)
        except FloeError as e:
            return _data_error(symbol_of(item), e)

    if len(items) <= 1:
        return [one(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(len(items), _BATCH_THREADS)) as pool:
        return list(pool.map(one, items))


#: Items of a batch call (update_batch, delete_batch, ...) in flight at once.
_BATCH_THREADS = 8


class Library:
    """A library: the symbols it holds and every operation on them (ArcticDB's ``Library``).

    Handles are cheap and thread-safe; every call that touches storage releases the GIL, so threads
    reading or writing different symbols run in parallel.
    """

    def __init__(
        self, inner: _floe.Library, store: "Store", output_format: Optional[str] = None, arrow_string_format_default: Any = None
    ) -> None:
        self._lib = inner
        self._name = inner.name  # fixed for the handle's life; every VersionedItem names it
        self._store_uri = store.get_uri()
        self._output_format = OutputFormat.parse(output_format, store._output_format)
        if arrow_string_format_default is None:
            arrow_string_format_default = store._arrow_string_format_default
        StringFormats.parse(arrow_string_format_default, None)  # refused here if bad
        self._arrow_string_format_default = arrow_string_format_default

    def __repr__(self) -> str:
        return f"Library(store={self._store_uri!r}, name={self.name!r})"

    @property
    def name(self) -> str:
        """The library's name."""
        return self._name

    def options(self) -> LibraryOptions:
        """The options the library was created with."""
        rows, cols, dynamic = self._lib.options()
        return LibraryOptions(rows, cols, dynamic)

    def _string_default(self, given: Any) -> Any:
        """A read's string format default: the one given, else the library's (else the store's)."""
        return self._arrow_string_format_default if given is None else given

    def admin_tools(self) -> AdminTools:
        """Storage accounting: objects and bytes by kind and by symbol (:class:`floe.AdminTools`)."""
        return AdminTools(self._lib)

    def __contains__(self, symbol: str) -> bool:
        return self.has_symbol(symbol)

    def __getitem__(self, symbol: str) -> VersionedItem:
        return self.read(symbol)

    # ----- helpers ----------------------------------------------------------------------------

    def _item(self, t: Tuple[str, int, int], data: Any = None, metadata: Any = None) -> VersionedItem:
        symbol, version, ts = t
        return VersionedItem(symbol, self._name, data, version, metadata, None, ts)

    def _old_envelope(self, symbol: str) -> Optional[_envelope.Envelope]:
        """The envelope of the symbol's newest live version, or None if it has none."""
        try:
            _, blob = self._lib.read_metadata(symbol, None)
        except SymbolNotFound:
            return None
        return _envelope.decode(blob)

    def _prepare(
        self,
        data: Any,
        metadata: Any,
        index_column: Optional[str],
        inherit: Optional[_envelope.Envelope],
        stream: bool = False,
        defer: bool = False,
    ):
        """(normalized input, envelope bytes). An existing version's normalization record is kept, so
        a frame appended or updated reads back with the index the symbol was written with."""
        n = _convert.normalize(data, index_column, stream, defer)
        norm = inherit.norm if inherit is not None and inherit.norm is not None else n.norm
        return n, _envelope.encode(norm, metadata, metadata is not None)

    # ----- writes -----------------------------------------------------------------------------

    def write(
        self,
        symbol: str,
        data: Any,
        metadata: Any = None,
        prune_previous_versions: bool = False,
        staged: bool = False,
        validate_index: bool = True,
        index_column: Optional[str] = None,
        recursive_normalizers: Optional[bool] = None,
    ) -> Union[VersionedItem, StageResult]:
        """Writes ``data`` as a new version of ``symbol``, replacing its contents.

        ``data``: a pandas DataFrame or Series, a pyarrow Table or RecordBatch, a polars DataFrame, or
        any Arrow PyCapsule producer. ``metadata``: any picklable object. ``index_column`` names the
        timestamp index column of Arrow-like input. Bad input raises InvalidInput before anything is
        written.

        A ``pyarrow.RecordBatchReader`` is written as it is read, never held whole: more data than fits
        in memory can be written this way. Its schema and index column are checked first; a batch that
        turns out bad further down (an index going back, a type that cannot be converted) raises
        InvalidInput then, and nothing is committed: the symbol keeps its previous version.

        ArcticDB's other arguments: ``staged=True`` is :meth:`stage` (deprecated there too; metadata
        goes to :meth:`finalize_staged_data`); ``validate_index`` is accepted, the index is always
        checked; ``recursive_normalizers=True`` (dicts and lists of frames) is refused: store such
        objects with :meth:`write_pickle`.
        """
        if recursive_normalizers:
            raise InvalidInput(f'write "{symbol}": recursive_normalizers is not supported; store nested objects with write_pickle')
        if staged:
            if metadata is not None:
                raise InvalidInput(f'write "{symbol}" staged: metadata is given to finalize_staged_data, not to a staged write')
            return self.stage(symbol, data, index_column=index_column)
        n, blob = self._prepare(data, metadata, index_column, None, stream=True, defer=True)
        if isinstance(n.table, pa.RecordBatchReader):
            # Read by the engine as it has room: a RecordBatchReader is never read whole, and a large
            # frame is converted chunk by chunk while the engine stores (_convert._pandas_stream).
            return self._item(self._lib.write_stream(symbol, n.table, n.index, blob, prune_previous_versions))
        # A frame of 2D blocks: their columns are copied a segment at a time as the engine writes (D49).
        return self._item(self._lib.write(symbol, n.table, n.index, blob, prune_previous_versions, n.deferred or None))

    def append(
        self,
        symbol: str,
        data: Any,
        metadata: Any = None,
        prune_previous_versions: bool = False,
        validate_index: bool = True,
        index_column: Optional[str] = None,
        compact_data: bool = False,
    ) -> VersionedItem:
        """Appends ``data``'s rows after the symbol's last row (creating the symbol if needed). The
        schema must match; a timestamp index must not start before the symbol's last timestamp.
        The new version's metadata is ``metadata`` (not combined with the previous version's).

        As in :meth:`write`, a ``pyarrow.RecordBatchReader`` is appended as it is read, never held
        whole, and a large pandas frame is converted chunk by chunk while the engine stores (except in
        a dynamic-schema library, where the data may add columns: it is then read whole). A batch that
        turns out bad further down raises then, and nothing is committed.

        ``validate_index`` is accepted for ArcticDB's signature (the index is always checked);
        ``compact_data=True`` is refused (ArcticDB folds a compaction into the append's version): call
        :meth:`compact_data` after the append."""
        if compact_data:
            raise InvalidInput(f'append "{symbol}": compact_data=True is not supported; call compact_data after the append')
        old = self._old_envelope(symbol)
        _refuse_pickled(old, "append", symbol)
        n, blob = self._prepare(data, metadata, index_column, old, stream=not self.options().dynamic_schema)
        if isinstance(n.table, pa.RecordBatchReader):
            return self._item(self._lib.append_stream(symbol, n.table, n.index, blob, prune_previous_versions))
        return self._item(self._lib.append(symbol, n.table, n.index, blob, prune_previous_versions))

    def update(
        self,
        symbol: str,
        data: Any,
        metadata: Any = None,
        upsert: bool = False,
        date_range: Any = None,
        prune_previous_versions: bool = False,
        index_column: Optional[str] = None,
    ) -> VersionedItem:
        """Replaces the rows in ``date_range`` (default: ``data``'s first to last timestamp) with
        ``data``'s rows. Timestamp-indexed symbols only. Without ``upsert`` a missing symbol raises
        SymbolNotFound. With ``metadata=None`` the previous version's metadata is kept."""
        old = self._old_envelope(symbol)
        _refuse_pickled(old, "update", symbol)
        if old is None and not upsert:
            raise SymbolNotFound(f'update "{symbol}": the symbol does not exist (pass upsert=True to create it)')
        n = _convert.normalize(data, index_column)
        norm = old.norm if old is not None and old.norm is not None else n.norm
        blob = _envelope.encode(norm, metadata, True) if metadata is not None or old is None else None
        dr = _mutation_range(date_range, f'update "{symbol}"')
        return self._item(self._lib.update(symbol, n.table, n.index, dr, blob, prune_previous_versions))

    def delete_data_in_range(self, symbol: str, date_range: Any, prune_previous_versions: bool = False) -> VersionedItem:
        """Removes the rows whose timestamp lies in ``date_range`` (inclusive), as a new version."""
        dr = _mutation_range(date_range, f'delete_data_in_range "{symbol}"')
        if dr is None:
            raise InvalidInput("delete_data_in_range needs a date_range")
        return self._item(self._lib.delete_data_in_range(symbol, dr, prune_previous_versions))

    def write_metadata(self, symbol: str, metadata: Any, prune_previous_versions: bool = False) -> VersionedItem:
        """Makes a new version with the same data and ``metadata``."""
        old = self._old_envelope(symbol)
        if old is None:
            raise SymbolNotFound(f'write_metadata "{symbol}": the symbol does not exist')
        blob = _envelope.encode(old.norm, metadata, metadata is not None)
        return self._item(self._lib.write_metadata(symbol, blob, prune_previous_versions))

    def _write_many(
        self, payloads: List[WritePayload], append: bool, prune: bool, prepare: Optional[Callable[[WritePayload], Any]] = None
    ) -> List[Union[VersionedItem, DataError]]:
        """Writes (or appends) the payloads in one engine batch. ``prepare(payload)`` gives each item's
        ``(table, index column, envelope)`` (default: the frame's, as ``write``/``append`` make it); an
        item it refuses gets its DataError and is not sent."""
        payloads = _payloads(payloads, WritePayload, "WritePayload(symbol, data, metadata=None, index_column=None)")

        def frame(p: WritePayload) -> Any:
            inherit = self._old_envelope(p.symbol) if append else None
            if append:
                _refuse_pickled(inherit, "append", p.symbol)
            n, blob = self._prepare(p.data, p.metadata, p.index_column, inherit)
            return n.table, n.index, blob

        out: List[Any] = [None] * len(payloads)
        items, slots = [], []
        for i, p in enumerate(payloads):
            try:
                items.append((p.symbol, *(prepare or frame)(p)))
            except FloeError as e:
                out[i] = _data_error(p.symbol, e)
                continue
            slots.append(i)
        for i, r in zip(slots, self._lib.write_batch(items, append, prune)):
            out[i] = _data_error(payloads[i].symbol, r) if isinstance(r, BaseException) else self._item(r)
        return out

    def write_batch(
        self, payloads: List[WritePayload], prune_previous_versions: bool = False, validate_index: bool = True
    ) -> List[Union[VersionedItem, DataError]]:
        """Writes several symbols concurrently; one VersionedItem or DataError per payload, in order.
        (``validate_index``: accepted for ArcticDB's signature; indexes are always checked.)"""
        return self._write_many(payloads, False, prune_previous_versions)

    def append_batch(
        self, payloads: List[WritePayload], prune_previous_versions: bool = False, validate_index: bool = True
    ) -> List[Union[VersionedItem, DataError]]:
        """Appends to several symbols; one VersionedItem or DataError per payload, in order.
        (``validate_index``: accepted for ArcticDB's signature; indexes are always checked.)"""
        return self._write_many(payloads, True, prune_previous_versions)

    def update_batch(
        self, update_payloads: List[UpdatePayload], upsert: bool = False, prune_previous_versions: bool = False
    ) -> List[Union[VersionedItem, DataError]]:
        """:meth:`update` of several symbols concurrently; one VersionedItem or DataError per payload,
        in order. A symbol may appear once (InvalidInput before anything is written otherwise)."""
        payloads = _payloads(update_payloads, UpdatePayload, "UpdatePayload(symbol, data, metadata=None, date_range=None, index_column=None)")
        return _each(
            payloads,
            lambda p: self.update(p.symbol, p.data, p.metadata, upsert, p.date_range, prune_previous_versions, p.index_column),
            lambda p: p.symbol,
        )

    def write_metadata_batch(
        self, write_metadata_payloads: List[WriteMetadataPayload], prune_previous_versions: bool = False
    ) -> List[Union[VersionedItem, DataError]]:
        """:meth:`write_metadata` for several symbols concurrently; one VersionedItem or DataError per
        payload, in order."""
        payloads = _payloads(write_metadata_payloads, WriteMetadataPayload, "WriteMetadataPayload(symbol, metadata)")
        return _each(payloads, lambda p: self.write_metadata(p.symbol, p.metadata, prune_previous_versions), lambda p: p.symbol)

    def write_pickle(self, symbol: str, data: Any, metadata: Any = None, prune_previous_versions: bool = False) -> VersionedItem:
        """Writes any picklable Python object as a new version of ``symbol``: stored as one pickle
        (protocol 5), read back whole by :meth:`read` as the object (whatever ``output_format``; date
        ranges, row ranges and columns do not apply). For data a dataframe cannot hold; frames should be
        written with :meth:`write`, which stores them column by column."""
        table, blob = _pickled(data, metadata)
        return self._item(self._lib.write(symbol, table, None, blob, prune_previous_versions))

    def write_pickle_batch(self, payloads: List[WritePayload], prune_previous_versions: bool = False) -> List[Union[VersionedItem, DataError]]:
        """:meth:`write_pickle` of several symbols; one VersionedItem or DataError per payload, in order."""

        def pickled(p: WritePayload) -> Any:
            table, blob = _pickled(p.data, p.metadata)
            return table, None, blob

        return self._write_many(payloads, False, prune_previous_versions, pickled)

    # ----- staged writes ------------------------------------------------------------------------

    def stage(
        self,
        symbol: str,
        data: Any,
        validate_index: bool = True,
        sort_on_index: bool = False,
        sort_columns: Optional[List[str]] = None,
        index_column: Optional[str] = None,
    ) -> StageResult:
        """Stores ``data`` as a staged chunk of ``symbol``: written, but no version until
        :meth:`finalize_staged_data` commits it (reads do not see it). Writers in any threads or
        processes may stage chunks of one symbol at once. The data needs a timestamp index, sorted
        (``sort_on_index=True`` sorts it first; ``validate_index`` is accepted for ArcticDB's signature,
        the index is always checked); chunks finalized together must not overlap in time.
        ``sort_columns`` is not supported (InvalidInput)."""
        if sort_columns:
            raise InvalidInput("stage: sort_columns is not supported; sort the data before staging it")
        n = _convert.normalize(data, index_column)
        table = n.table
        if sort_on_index and n.index is not None and isinstance(table, pa.Table) and table.num_rows:
            table = table.sort_by([(n.index, "ascending")])
        blob = _envelope.encode(n.norm, None, False)
        token, rows, date_range, _ = self._lib.stage(symbol, table, n.index, blob)
        return _stage_result(symbol, token, rows, date_range)

    def finalize_staged_data(
        self,
        symbol: str,
        mode: Any = StagedDataFinalizeMethod.WRITE,
        prune_previous_versions: bool = False,
        metadata: Any = None,
        validate_index: bool = True,
        delete_staged_data_on_failure: bool = False,
        stage_results: Optional[List[StageResult]] = None,
    ) -> VersionedItem:
        """Commits the staged chunks of ``symbol`` (all, or those ``stage_results`` names) as one new
        version, in timestamp order, without rewriting them; the chunks are then forgotten. ``mode``
        ``WRITE`` replaces the symbol's rows, ``APPEND`` adds the chunks after them. Chunks that overlap
        in time, differ in columns or types, or (appending) start before the symbol's last timestamp
        raise (UnsortedIndex, SchemaMismatch) and commit nothing; with ``delete_staged_data_on_failure``
        the chunks are then deleted. NotFound when nothing is staged."""
        return self._finalize(symbol, mode, prune_previous_versions, metadata, delete_staged_data_on_failure, stage_results, False)

    def sort_and_finalize_staged_data(
        self,
        symbol: str,
        mode: Any = StagedDataFinalizeMethod.WRITE,
        prune_previous_versions: bool = False,
        metadata: Any = None,
        delete_staged_data_on_failure: bool = False,
        stage_results: Optional[List[StageResult]] = None,
    ) -> VersionedItem:
        """Like :meth:`finalize_staged_data`, for chunks that may overlap or come in any order: their
        rows are merged in timestamp order (equal timestamps keep the chunks' staging order) and written
        anew, held in memory whole meanwhile. Unlike ``finalize_staged_data``, a crash between the
        commit and forgetting the chunks leaves them staged: finalizing them again would add their rows
        twice."""
        return self._finalize(symbol, mode, prune_previous_versions, metadata, delete_staged_data_on_failure, stage_results, True)

    def _finalize(self, symbol, mode, prune, metadata, delete_on_failure, stage_results, sort) -> VersionedItem:
        how = StagedDataFinalizeMethod.parse(mode)
        tokens = _tokens(symbol, stage_results)
        blob = None
        if metadata is not None or how == StagedDataFinalizeMethod.APPEND:
            blob = self._finalize_envelope(symbol, how, metadata, tokens)
        try:
            return self._item(self._lib.finalize_staged(symbol, how == StagedDataFinalizeMethod.APPEND, blob, tokens, prune, sort))
        except InvalidInput:
            if delete_on_failure:
                self._lib.delete_staged(symbol, tokens)
            raise

    def _finalize_envelope(self, symbol: str, how: str, metadata: Any, tokens: Optional[List[bytes]]) -> Optional[bytes]:
        """The finalized version's envelope: the symbol's normalization record when appending to it
        (as ``append`` keeps it), else the staged chunks' own; ``metadata`` as the user metadata."""
        norm = None
        if how == StagedDataFinalizeMethod.APPEND:
            old = self._old_envelope(symbol)
            norm = old.norm if old is not None else None
        if norm is None:
            chunks = [c for c in self._lib.staged_chunks(symbol) if tokens is None or c[0] in tokens]
            chunks = sorted((c for c in chunks if c[1] > 0), key=lambda c: c[2])
            if not chunks:
                return None  # the engine says what is wrong
            norm = _envelope.decode(chunks[0][3]).norm
        return _envelope.encode(norm, metadata, metadata is not None)

    def delete_staged_data(self, symbol: str, stage_results: Optional[List[StageResult]] = None) -> None:
        """Forgets the staged chunks of ``symbol`` (all, or those ``stage_results`` names). Their data
        becomes garbage that the next vacuum removes."""
        self._lib.delete_staged(symbol, _tokens(symbol, stage_results))

    def get_staged_symbols(self) -> List[str]:
        """The symbols with staged chunks not yet finalized or deleted."""
        return self._lib.staged_symbols()

    def list_staged_data(self, symbol: str) -> List[StageResult]:
        """The chunks staged for ``symbol``, oldest first."""
        return [_stage_result(symbol, t, rows, dr) for t, rows, dr, _ in self._lib.staged_chunks(symbol)]

    # ----- reads ------------------------------------------------------------------------------

    def _row_offset(self, symbol: str, version: int, row_range: Optional[Tuple[int, int]], tail: Optional[int], rows: int) -> int:
        """Row number of the first row a read returned (to rebuild a RangeIndex)."""
        if tail is not None:
            if tail < 0:
                return -tail
            total = self._lib.get_description(symbol, ("version", version))[3]
            return total - rows
        if row_range is None or row_range[0] >= 0:
            return 0 if row_range is None else row_range[0]
        total = self._lib.get_description(symbol, ("version", version))[3]
        return max(total + row_range[0], 0)

    def _finish_read(
        self, t, output_format: Optional[str], row_range=None, tail=None, strings: Optional[StringFormats] = None
    ) -> VersionedItem:
        # ``t``: (item, table, blob), or with a fourth and fifth element, the columns and blocks of
        # columns the engine handed over for numpy (reads to pandas; the table holds the others).
        # Written for a small read's sake (as ``read``): few calls, the common case first.
        item, table, blob = t[:3]
        env = _envelope.decode(blob)
        data = _read_table(table)
        norm = env.norm
        fmt = output_format if output_format in _OUTPUT_FORMATS else OutputFormat.parse(output_format, self._output_format)
        if norm and norm.get("kind") == "pickle":
            return self._item(item, _unpickled(data, item[0]), env.user)
        if fmt == "pyarrow" and strings is None:
            return VersionedItem(item[0], self._name, data, item[1], env.user, None, item[2])
        owned = t[3] if len(t) > 3 else ()
        blocks = t[4] if len(t) > 4 else ()
        if strings is not None and fmt != "pandas":
            data = strings.apply(data)
        offset = 0
        if fmt == "pandas" and _convert.uses_row_offset(norm):
            offset = self._row_offset(item[0], item[1], row_range, tail, data.num_rows)
        return self._item(item, _convert.to_output(data, norm, fmt, offset, owned, blocks), env.user)

    def _read_columns(self, columns: Optional[List[Any]], as_of: Any, fetch):
        """Runs ``fetch(as_of, stored_columns)`` (a read returning ``(item, table, blob)``) for a
        ``columns=`` argument in one read in the common case: the names are mapped without the stored
        frame description first, and only if that description shows index columns the read left out
        (a pandas index stored as columns) is the same version read again with them."""
        if columns is None:
            return fetch(as_of, None)
        if isinstance(columns, (str, bytes)):
            raise InvalidInput(f"columns must be a list of column names, e.g. columns=[{columns!r}], not a single name")
        first = _convert.storage_columns(list(columns), None)
        t = fetch(as_of, first)
        need = _convert.storage_columns(list(columns), _envelope.decode(t[2]).norm)
        if need == first:
            return t
        return fetch(("version", t[0][1]), need)

    def _columns(self, symbol: str, columns: Optional[List[Any]], as_of: Any) -> Optional[List[str]]:
        if columns is None:
            return None
        if isinstance(columns, (str, bytes)):
            raise InvalidInput(f"columns must be a list of column names, e.g. columns=[{columns!r}], not a single name")
        needs_norm = any(not isinstance(c, str) for c in columns)
        norm = None
        try:
            _, blob = self._lib.read_metadata(symbol, as_of)
            norm = _envelope.decode(blob).norm
        except NotFound:
            if needs_norm:
                raise
        return _convert.storage_columns(list(columns), norm)

    def read(
        self,
        symbol: str,
        as_of: Any = None,
        date_range: Any = None,
        row_range: Any = None,
        columns: Optional[List[Any]] = None,
        query_builder: Any = None,
        lazy: bool = False,
        output_format: Optional[str] = None,
        arrow_string_format_default: Any = None,
        arrow_string_format_per_column: Any = None,
    ) -> VersionedItem:
        """Reads a version of ``symbol`` (latest by default).

        as_of: version number (negative counts back from the newest), snapshot name or datetime.
        date_range: (start, end), inclusive, either side None (timestamp index only).
        row_range: (start, end), end exclusive, negatives count from the end.
        columns: the columns to return (the index always comes with them).
        output_format: "pandas" (default, index restored), "pyarrow" or "polars".
        arrow_string_format_default / arrow_string_format_per_column ({column: format}): the type of
        string columns in a read to pyarrow or polars (:class:`floe.ArrowOutputStringFormat`; strings
        come as stored without them; ignored for pandas). ArcticDB's ``query_builder`` and ``lazy``
        raise InvalidInput unless left at their defaults.
        """
        # Arguments left at their defaults cost no helper call: a small read (a 10-row version) is
        # dominated by fixed costs, ~180 us with cold caches, and each call of Python code is some
        # (design/decisions.md D60, D62).
        if query_builder is not None or lazy:
            _refuse_unsupported(f'read "{symbol}"', query_builder, lazy)
        strings = None
        string_default = self._arrow_string_format_default if arrow_string_format_default is None else arrow_string_format_default
        if string_default is not None or arrow_string_format_per_column is not None:
            strings = StringFormats.parse(string_default, arrow_string_format_per_column)
        rr = None if row_range is None else _row_range(row_range)
        dr = None if date_range is None else _date_range(date_range)
        # A read to pandas takes the plain numeric columns over from the engine without a copy; one to
        # polars takes dictionary-coded strings as string views, which polars keeps as they are
        # (unless string formats are asked for); categorical strings come from the stored codes.
        fmt = output_format if output_format in _OUTPUT_FORMATS else OutputFormat.parse(output_format, self._output_format)
        owned, views = fmt == "pandas", fmt == "polars" and strings is None
        codes = strings is not None and fmt != "pandas" and strings.wants_categorical()
        a = None if as_of is None else ("version", as_of) if type(as_of) is int else _as_of(as_of)

        def fetch(a, cols):
            t, _, owned_columns, blocks = self._lib.read(symbol, (a, dr, rr, cols), False, owned, views, codes)
            return (*t, owned_columns, blocks)

        t = fetch(a, None) if columns is None else self._read_columns(columns, a, fetch)
        return self._finish_read(t, fmt, rr, strings=strings)

    def _read_debug(self, symbol: str) -> Tuple[pa.Table, List[int], Tuple[int, int]]:
        """Test hook: a pyarrow read, the addresses of the engine's value buffers taken in Rust before
        the hand-over (zero-copy means the table points at the same memory), and the engine call's
        wall-clock span in ns, measured while the GIL was released."""
        t, (addresses, span), _, _ = self._lib.read(symbol, (None, None, None, None), True)
        return _read_table(t[1]), addresses, span

    def read_batch(
        self,
        symbols: List[Union[str, ReadRequest]],
        query_builder: Any = None,
        lazy: bool = False,
        output_format: Optional[str] = None,
        arrow_string_format_default: Any = None,
    ) -> List[Union[VersionedItem, DataError]]:
        """Reads several symbols concurrently; one VersionedItem or DataError per request, in order.
        ``arrow_string_format_default`` as in :meth:`read`; ArcticDB's ``query_builder`` and ``lazy``
        raise InvalidInput unless left at their defaults."""
        _refuse_unsupported("read_batch", query_builder, lazy)
        strings = StringFormats.parse(self._string_default(arrow_string_format_default), None)
        requests = [ReadRequest(s) if isinstance(s, str) else s for s in symbols]
        out: List[Any] = [None] * len(requests)
        args, slots = [], []
        for i, r in enumerate(requests):
            try:
                a = _as_of(r.as_of)
                args.append((r.symbol, (a, _date_range(r.date_range), _row_range(r.row_range), self._columns(r.symbol, r.columns, a))))
                slots.append(i)
            except FloeError as e:
                out[i] = _data_error(r.symbol, e, r.as_of)
        # Reads to polars take dictionary-coded strings as string views (D31); a bad format is reported
        # for its request by _finish_read below.
        views = [
            strings is None and _format_or_none(requests[i].output_format or output_format, self._output_format) == "polars"
            for i in slots
        ]
        for i, res in zip(slots, self._lib.read_batch(args, views)):
            r = requests[i]
            if isinstance(res, BaseException):
                out[i] = _data_error(r.symbol, res, r.as_of)
                continue
            try:
                out[i] = self._finish_read(res, r.output_format or output_format, _row_range(r.row_range), strings=strings)
            except FloeError as e:
                out[i] = _data_error(r.symbol, e, r.as_of)
        return out

    def head(
        self,
        symbol: str,
        n: int = 5,
        as_of: Any = None,
        columns: Optional[List[Any]] = None,
        lazy: bool = False,
        output_format: Optional[str] = None,
        arrow_string_format_default: Any = None,
    ) -> VersionedItem:
        """The first ``n`` rows (all but the last ``-n`` if negative); ``arrow_string_format_default``
        as in :meth:`read`."""
        return self._end_rows("head", symbol, n, as_of, columns, lazy, output_format, arrow_string_format_default)

    def tail(
        self,
        symbol: str,
        n: int = 5,
        as_of: Any = None,
        columns: Optional[List[Any]] = None,
        lazy: bool = False,
        output_format: Optional[str] = None,
        arrow_string_format_default: Any = None,
    ) -> VersionedItem:
        """The last ``n`` rows (all but the first ``-n`` if negative); ``arrow_string_format_default``
        as in :meth:`read`."""
        return self._end_rows("tail", symbol, n, as_of, columns, lazy, output_format, arrow_string_format_default)

    def _end_rows(self, end: str, symbol, n, as_of, columns, lazy, output_format, string_default) -> VersionedItem:
        """:meth:`head` (``end="head"``) or :meth:`tail`."""
        _refuse_unsupported(f'{end} "{symbol}"', None, lazy)
        strings = StringFormats.parse(self._string_default(string_default), None)
        rows = self._lib.head if end == "head" else self._lib.tail
        t = self._read_columns(columns, _as_of(as_of), lambda a, cols: rows(symbol, int(n), a, cols))
        if end == "head":
            return self._finish_read(t, output_format, (0, 0), strings=strings)
        return self._finish_read(t, output_format, tail=int(n), strings=strings)

    def iter_batches(
        self,
        symbol: str,
        as_of: Any = None,
        date_range: Any = None,
        row_range: Any = None,
        columns: Optional[List[Any]] = None,
        output_format: Optional[str] = None,
    ) -> Iterator[Any]:
        """Streams a read: yields the data about one stored row slice (``rows_per_segment`` rows) at a
        time, fetching each slice only when it is reached, so memory stays bounded."""
        a = _as_of(as_of)
        rr = _row_range(row_range)
        stream = self._lib.read_stream(symbol, (a, _date_range(date_range), rr, self._columns(symbol, columns, a)))
        (item, blob) = stream.info()
        env = _envelope.decode(blob)
        fmt = OutputFormat.parse(output_format, self._output_format)
        offset = None
        for batch in stream:
            table = pa.Table.from_batches([pa.record_batch(batch)])
            if offset is None:
                offset = 0
                if fmt == "pandas" and _convert.uses_row_offset(env.norm):
                    offset = self._row_offset(item[0], item[1], rr, None, table.num_rows)
            yield _convert.to_output(table, env.norm, fmt, offset)
            offset += table.num_rows

    def read_metadata(self, symbol: str, as_of: Any = None) -> VersionedItem:
        """The metadata of a version (data=None), reading only its index."""
        item, blob = self._lib.read_metadata(symbol, _as_of(as_of))
        return self._item(item, None, _envelope.decode(blob).user)

    def read_metadata_batch(self, symbols: List[Union[str, ReadInfoRequest]]) -> List[Union[VersionedItem, DataError]]:
        """read_metadata for several symbols; one VersionedItem or DataError each."""
        out: List[Any] = []
        for s in symbols:
            r = ReadInfoRequest(s) if isinstance(s, str) else s
            try:
                out.append(self.read_metadata(r.symbol, r.as_of))
            except FloeError as e:
                out.append(_data_error(r.symbol, e, r.as_of))
        return out

    def get_description(self, symbol: str, as_of: Any = None) -> SymbolDescription:
        """Columns, index, row count and date range of a version, from its index alone."""
        a = _as_of(as_of)
        item, schema, index_col, rows, index_range, segments, operation = self._lib.get_description(symbol, a)
        schema = pa.schema(schema)
        _, blob = self._lib.read_metadata(symbol, ("version", item[1]))
        norm = _envelope.decode(blob).norm
        index_cols: List[str] = []
        index_names: List[Any] = []
        index_type = "NA"
        if norm and norm.get("kind") == "pandas":
            idx = norm["index"]
            if idx["type"] == "multi":
                index_cols, index_names, index_type = idx["columns"], idx["names"], "multi_index"
            elif idx["type"] in ("datetime", "column"):
                index_cols, index_names, index_type = [idx["column"]], [idx["name"]], "index"
        elif index_col is not None:
            index_cols, index_names, index_type = [index_col], [index_col], "index"
        renamed = (norm or {}).get("renamed", {})
        columns = tuple(NameWithDType(renamed.get(f.name, f.name), f.type) for f in schema if f.name not in index_cols)
        index = tuple(NameWithDType(n, schema.field(c).type) for c, n in zip(index_cols, index_names))
        date_range = (_ts(index_range[0]), _ts(index_range[1])) if index_col and index_range else (pd.NaT, pd.NaT)
        return SymbolDescription(
            columns=columns,
            index=index,
            index_type=index_type,
            row_count=rows,
            last_update_time=_ts(item[2]),
            date_range=date_range,
            sorted="ASCENDING" if index_col else "UNKNOWN",
            schema=schema,
            segment_count=segments,
            operation=operation,
            version=item[1],
        )

    # ----- symbols and versions ---------------------------------------------------------------

    def get_description_batch(self, symbols: List[Union[str, ReadInfoRequest]]) -> List[Union[SymbolDescription, DataError]]:
        """:meth:`get_description` of several symbols; one SymbolDescription or DataError each, in order."""
        requests = [ReadInfoRequest(s) if isinstance(s, str) else s for s in symbols]
        out: List[Any] = []
        for r in requests:
            try:
                out.append(self.get_description(r.symbol, r.as_of))
            except FloeError as e:
                out.append(_data_error(r.symbol, e, r.as_of))
        return out

    def verify(self, symbol: str, as_of: Any = None, parallel: bool = True) -> Verification:
        """Checks every object a version stores against its checksums, without reading its data into
        memory: the version record, the index, and each data segment whole (every block of every
        column). A read verifies the blocks it decodes; this finds damage anywhere in the version
        (after a disk fault, or a restore from backup). ``parallel=False`` checks one segment after
        another on the calling thread: slower, but it leaves the other cores to other work (a scrub in
        the background). Not in ArcticDB.

        Raises :class:`CorruptData` naming the damaged or missing object, and the not-found
        errors of :meth:`read` for a missing symbol, version or snapshot."""
        item, segments, nbytes = self._lib.verify(symbol, _as_of(as_of), bool(parallel))
        return Verification(item[0], item[1], segments, nbytes)

    def list_symbols(self, snapshot_name: Optional[str] = None, regex: Optional[str] = None) -> List[str]:
        """The symbols with a live version (or those in snapshot ``snapshot_name``), sorted;
        ``regex`` keeps those it matches (``re.search``)."""
        if snapshot_name is None:
            symbols = self._lib.list_symbols()
        else:
            if snapshot_name not in dict(self._lib.list_snapshots()):
                raise SnapshotNotFound(f'snapshot "{snapshot_name}" does not exist')
            names, _, _, _, snaps = self._lib.list_versions(None)
            symbols = sorted({name for name, held in zip(names, snaps) if snapshot_name in held})
        if regex is not None:
            pattern = re.compile(regex)
            symbols = [s for s in symbols if pattern.search(s)]
        return symbols

    def reload_symbol_list(self) -> None:
        """ArcticDB rebuilds its cached list of symbols from storage here. Floe keeps no such list:
        :meth:`list_symbols` reads the symbols' references each time, so it is never stale and this does
        nothing."""

    def compact_symbol_list(self) -> int:
        """ArcticDB merges the entries of its cached list of symbols into one and returns how many there
        were. Floe keeps no such list (:meth:`reload_symbol_list`): there is nothing to merge, and 0."""
        return 0

    def has_symbol(self, symbol: str, as_of: Any = None) -> bool:
        """Whether ``symbol`` has a live version (or the version ``as_of`` names exists)."""
        return self._lib.has_symbol(symbol, _as_of(as_of))

    def list_versions(
        self,
        symbol: Optional[str] = None,
        snapshot: Optional[str] = None,
        latest_only: bool = False,
        skip_snapshots: bool = False,
    ) -> Dict[SymbolVersion, VersionInfo]:
        """Versions of ``symbol`` (or of every symbol), newest first: live ones, plus deleted ones
        that snapshots keep. ``snapshot`` keeps only the versions in that snapshot."""
        if snapshot is not None and snapshot not in dict(self._lib.list_snapshots()):
            raise SnapshotNotFound(f'snapshot "{snapshot}" does not exist')
        # Tens of thousands of small objects (the rows from the engine, then the result): with the
        # collector on, CPython runs a young-generation collection every 700 allocations, about half
        # of the time at 10,000 versions.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._version_dict(symbol, snapshot, latest_only, skip_snapshots)
        finally:
            if collecting:
                gc.enable()

    def _version_dict(self, symbol, snapshot, latest_only, skip_snapshots) -> Dict[SymbolVersion, VersionInfo]:
        names, versions, stamps, deleted, snaps = self._lib.list_versions(symbol)
        if snapshot is not None or skip_snapshots or latest_only:
            keep = []
            seen = set()
            for i, (name, gone, held) in enumerate(zip(names, deleted, snaps)):
                if snapshot is not None and snapshot not in held:
                    continue
                if skip_snapshots and gone:
                    continue
                if latest_only and (name in seen or gone):
                    continue
                seen.add(name)
                keep.append(i)
            names, versions, deleted = [names[i] for i in keep], [versions[i] for i in keep], [deleted[i] for i in keep]
            snaps = [[] for _ in keep] if skip_snapshots else [snaps[i] for i in keep]
            stamps = stamps[keep]
        dates = _timestamps(stamps)
        # tuple.__new__ is what the NamedTuples' own constructors end in, without their Python-level
        # argument handling (half of this loop's time at 10,000 versions). Each snapshot list is a fresh
        # one from the bridge, so it is the caller's without a copy.
        make = tuple.__new__
        return {
            make(SymbolVersion, (name, version)): make(VersionInfo, (date, gone, held))
            for name, version, date, gone, held in zip(names, versions, dates, deleted, snaps)
        }

    def delete(self, symbol: str, versions: Union[None, int, Iterable[int]] = None) -> None:
        """Deletes every version of ``symbol``, or only ``versions``. Snapshots keep what they hold."""
        if versions is None:
            self._lib.delete(symbol)
        else:
            self._lib.delete_versions(symbol, [versions] if isinstance(versions, int) else [int(v) for v in versions])

    def delete_batch(self, delete_requests: List[Union[str, DeleteRequest]]) -> List[Optional[DataError]]:
        """:meth:`delete` of several symbols (``DeleteRequest(symbol, version_ids)``; a bare name deletes
        every version); None for each that succeeded, a DataError for each that failed, in order."""
        requests = _payloads(
            [DeleteRequest(r) if isinstance(r, str) else r for r in delete_requests], DeleteRequest, "DeleteRequest(symbol, version_ids=None)"
        )

        def one(r: DeleteRequest) -> None:
            self.delete(r.symbol, r.version_ids)

        return _each(requests, one, lambda r: r.symbol)

    def prune_previous_versions(self, symbol: str) -> None:
        """Deletes every version of ``symbol`` older than its newest live one."""
        self._lib.prune_previous_versions(symbol)

    # ----- compaction -------------------------------------------------------------------------

    def is_symbol_fragmented(self, symbol: str, segment_size: Optional[int] = None) -> bool:
        """Whether compacting ``symbol`` (:meth:`defragment_symbol_data`) would save at least 100 data
        segments (ArcticDB's default threshold), merging runs of small row slices that appends and
        updates left into slices of ``segment_size`` rows (default: the library's rows per segment).
        Reads only the latest version's index."""
        return self._lib.fragmentation(symbol, _segment_size(segment_size))[3]

    def defragment_symbol_data(
        self, symbol: str, segment_size: Optional[int] = None, prune_previous_versions: bool = False
    ) -> VersionedItem:
        """:meth:`compact_data` of a fragmented symbol. As in ArcticDB, raises (InvalidInput here) when
        :meth:`is_symbol_fragmented` is False; nothing is written then."""
        size = _segment_size(segment_size)
        _, segments, compacted, fragmented = self._lib.fragmentation(symbol, size)
        if not fragmented:
            raise InvalidInput(
                f"symbol {symbol!r} is not fragmented: compacting it would take {segments} data segments to "
                f"{compacted}, fewer than 100 saved (compact_data compacts it anyway)"
            )
        return self._item(self._lib.compact(symbol, size, prune_previous_versions))

    def compact_data_explain_plan(self, symbol: str, rows_per_segment: Optional[int] = None) -> CompactDataInfo:
        """A dry run of :meth:`compact_data` with the same ``rows_per_segment``: the rows of each row slice
        of the latest version now and after, and the version it would commit. Reads only the version's
        index; another writer may change the symbol before a compaction."""
        version, next_version, before, after = self._lib.compaction_outline(symbol, _segment_size(rows_per_segment))
        return CompactDataInfo(before, after, version, version if next_version is None else next_version)

    def compact_data(
        self, symbol: str, rows_per_segment: Optional[int] = None, prune_previous_versions: bool = False
    ) -> VersionedItem:
        """Rewrites the runs of small row slices of ``symbol``'s latest version (left by appends and
        updates) as full slices of ``rows_per_segment`` rows (default: the library's), keeping the
        other slices without rewriting them, as a new version with the same rows and metadata. Returns
        the latest version unchanged when nothing would merge. Raises Conflict, committing nothing, if
        another writer changed the symbol meanwhile."""
        return self._item(self._lib.compact(symbol, _segment_size(rows_per_segment), prune_previous_versions))

    def rename_symbol(self, from_symbol: str, to_symbol: str) -> VersionedItem:
        """Renames ``from_symbol`` to ``to_symbol`` (its newest version moves; older ones are deleted)."""
        return self._item(self._lib.rename_symbol(from_symbol, to_symbol))

    # ----- snapshots --------------------------------------------------------------------------

    def snapshot(
        self,
        snapshot_name: str,
        metadata: Any = None,
        skip_symbols: Optional[List[str]] = None,
        versions: Optional[Dict[str, int]] = None,
    ) -> None:
        """Takes snapshot ``snapshot_name`` of the newest version of every symbol (minus
        ``skip_symbols``), or of exactly the ``versions`` given ({symbol: version})."""
        if skip_symbols and versions:
            raise InvalidInput("snapshot takes skip_symbols or versions, not both")
        symbols: Optional[List[str]] = None
        if versions:
            symbols = list(versions)
        elif skip_symbols:
            skip = set(skip_symbols)
            symbols = [s for s in self._lib.list_symbols() if s not in skip]
        blob = _envelope.encode(None, metadata, True) if metadata is not None else None
        self._lib.snapshot(snapshot_name, blob, symbols, {k: int(v) for k, v in (versions or {}).items()})

    def list_snapshots(self, load_metadata: bool = True) -> Union[Dict[str, Any], List[str]]:
        """Snapshot names mapped to their metadata (or just the names)."""
        snaps = self._lib.list_snapshots()
        if not load_metadata:
            return [n for n, _ in snaps]
        return {n: _envelope.decode(m).user for n, m in snaps}

    def delete_snapshot(self, snapshot_name: str) -> None:
        """Deletes a snapshot and the data only it kept alive."""
        self._lib.delete_snapshot(snapshot_name)


class Store:
    """The libraries at one storage URI (ArcticDB's ``Arctic``).

    URIs: ``mem://`` (in process), ``lmdb:///path/to/folder?map_size=...`` (embedded, local folder),
    ``s3://host:bucket?region=...&access=...&secret=...`` (S3 or any S3-compatible server).
    """

    def __init__(
        self,
        uri: str,
        encoding_version: Any = None,
        output_format: str = OutputFormat.PANDAS,
        arrow_string_format_default: Any = None,
    ) -> None:
        """Opens the store at ``uri``. ``output_format`` and ``arrow_string_format_default`` are the
        defaults of its libraries' reads (each library and each read may override them).
        ``encoding_version`` (ArcticDB's choice of its storage encoding) is accepted and ignored:
        Floe has one format (design/format.md)."""
        self._output_format = OutputFormat.parse(output_format)
        StringFormats.parse(arrow_string_format_default, None)  # refused here if bad
        self._arrow_string_format_default = arrow_string_format_default
        error: Optional[FloeError] = None
        try:
            self._store = _floe.Store(uri)
        except FloeError as e:
            # The extension's message quotes the URI, query string (and so the secret) included.
            # Raised outside the except block, so the original is not kept as __context__ either.
            error = type(e)(_hide_query(str(e), uri))
        if error is not None:
            raise error
        self._uri = self._store.uri()

    def __repr__(self) -> str:
        return f"Store({self._uri!r})"

    def get_uri(self) -> str:
        """The URI, secrets removed."""
        return self._uri

    @staticmethod
    def _opts(options: Optional[LibraryOptions]) -> Tuple[int, int, bool]:
        o = options or LibraryOptions()
        return (int(o.rows_per_segment), int(o.columns_per_segment), bool(o.dynamic_schema))

    def create_library(
        self,
        name: str,
        library_options: Optional[LibraryOptions] = None,
        enterprise_library_options: Any = None,
        output_format: Optional[str] = None,
        arrow_string_format_default: Any = None,
    ) -> Library:
        """Creates library ``name``; AlreadyExists if it exists. ``output_format`` and
        ``arrow_string_format_default`` override the store's defaults for this Library object.
        ``enterprise_library_options`` (ArcticDB's replication and background deletion) are refused
        unless left at None."""
        if enterprise_library_options is not None:
            raise InvalidInput("create_library: enterprise_library_options (replication, background deletion) are not supported")
        inner = self._store.create_library(name, self._opts(library_options))
        return Library(inner, self, output_format, arrow_string_format_default)

    def get_library(
        self,
        name: str,
        create_if_missing: bool = False,
        library_options: Optional[LibraryOptions] = None,
        output_format: Optional[str] = None,
        arrow_string_format_default: Any = None,
    ) -> Library:
        """Opens library ``name`` (LibraryNotFound if missing, unless ``create_if_missing``).
        ``output_format`` and ``arrow_string_format_default`` as in :meth:`create_library`."""
        if create_if_missing:
            inner = self._store.get_or_create_library(name, self._opts(library_options))
        else:
            inner = self._store.get_library(name)
        return Library(inner, self, output_format, arrow_string_format_default)

    def __getitem__(self, name: str) -> Library:
        return self.get_library(name)

    def __contains__(self, name: str) -> bool:
        return self.has_library(name)

    def has_library(self, name: str) -> bool:
        """Whether library ``name`` exists."""
        return self._store.has_library(name)

    def list_libraries(self) -> List[str]:
        """The libraries, sorted."""
        return self._store.list_libraries()

    def modify_library_option(self, library: Union[Library, str], option: Any, option_value: Any) -> None:
        """Changes one option of ``library`` (a Library or its name) in storage (ArcticDB's
        ``modify_library_option``): ``ModifiableLibraryOption.ROWS_PER_SEGMENT`` or
        ``.COLUMNS_PER_SEGMENT`` (or ArcticDB's members of the same names), to a positive int. Writes
        of the Library object passed, and of libraries opened afterwards, use the new value; libraries
        open elsewhere keep theirs until reopened. What is stored stays as it is (slices of any size read
        alike). Other options raise InvalidInput."""
        name = library.name if isinstance(library, Library) else library
        if not isinstance(name, str):
            raise InvalidInput(f"modify_library_option takes a Library or a library name, not {type(library).__name__}")
        option_name = str(getattr(option, "name", option)).upper()
        if option_name not in (ModifiableLibraryOption.ROWS_PER_SEGMENT, ModifiableLibraryOption.COLUMNS_PER_SEGMENT):
            raise InvalidInput(
                f"modify_library_option: {option!r} cannot be changed in Floe (ROWS_PER_SEGMENT and COLUMNS_PER_SEGMENT can)"
            )
        if isinstance(option_value, bool) or not isinstance(option_value, (int, np.integer)) or option_value <= 0:
            raise InvalidInput(f"modify_library_option: {option_name} must be a positive integer, not {option_value!r}")
        key = "rows_per_segment" if option_name == ModifiableLibraryOption.ROWS_PER_SEGMENT else "columns_per_segment"
        self._store.modify_library_options(name, **{key: int(option_value)})
        if isinstance(library, Library):
            library._lib = self._store.get_library(name)

    def delete_library(self, name: str) -> None:
        """Deletes library ``name`` and everything in it (absent is not an error)."""
        self._store.delete_library(name)
