"""Result and request types, named and shaped as ArcticDB's so code written for it reads the same."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, List, NamedTuple, Optional, Tuple

import pandas as pd
import pyarrow as pa

from .errors import InvalidInput


class OutputFormat:
    """What ``read`` returns: ``"pandas"`` (default), ``"pyarrow"`` or ``"polars"``."""

    PANDAS = "pandas"
    PYARROW = "pyarrow"
    POLARS = "polars"

    @staticmethod
    def parse(value: Optional[str], default: str = "pandas") -> str:
        fmt = (value or default).lower()
        if fmt not in (OutputFormat.PANDAS, OutputFormat.PYARROW, OutputFormat.POLARS):
            raise InvalidInput(f"output_format {value!r} is not one of 'pandas', 'pyarrow', 'polars'")
        return fmt


class StagedDataFinalizeMethod:
    """How :meth:`Library.finalize_staged_data` combines staged chunks with the symbol's rows:
    ``WRITE`` replaces them, ``APPEND`` adds the chunks after them."""

    WRITE = "write"
    APPEND = "append"

    @staticmethod
    def parse(value: Any) -> str:
        mode = str(getattr(value, "name", value)).lower()
        if mode not in (StagedDataFinalizeMethod.WRITE, StagedDataFinalizeMethod.APPEND):
            raise InvalidInput(f"mode {value!r} is not StagedDataFinalizeMethod.WRITE or .APPEND")
        return mode


class StageResult(NamedTuple):
    """One chunk :meth:`Library.stage` stored: pass it in ``stage_results`` to finalize or delete only
    the chunks named. ``token`` is opaque; ``date_range`` is the chunk's first and last timestamp (None
    for an empty chunk)."""

    symbol: str
    token: bytes
    rows: int
    date_range: Optional[Tuple[pd.Timestamp, pd.Timestamp]]


@dataclass(frozen=True)
class LibraryOptions:
    """Options fixed when a library is created.

    rows_per_segment: rows per stored segment (default 100,000).
    columns_per_segment: data columns per segment at most (default 127); a long row slice of many
        columns is stored in narrower segments of about 2.5 MB, but of 32 columns or more.
    dynamic_schema: whether appends and updates may add columns (null for older rows) and widen types
        (wider integers, integers to float64).
    """

    rows_per_segment: int = 100_000
    columns_per_segment: int = 127
    dynamic_schema: bool = False


class ModifiableLibraryOption:
    """The options :meth:`Store.modify_library_option` changes (ArcticDB's names; ArcticDB's ``DEDUP`` and
    ``RECURSIVE_NORMALIZERS`` have no Floe counterpart and are refused)."""

    ROWS_PER_SEGMENT = "ROWS_PER_SEGMENT"
    COLUMNS_PER_SEGMENT = "COLUMNS_PER_SEGMENT"


@dataclass
class VersionedItem:
    """A version a call wrote or read: ``data`` holds the read's data (None for writes)."""

    symbol: str
    library: str
    data: Any
    version: int
    metadata: Any = None
    host: Optional[str] = None
    timestamp: Optional[int] = None  # commit time, ns since the epoch (UTC)

    def __repr__(self) -> str:
        return (
            f"VersionedItem(symbol={self.symbol!r}, library={self.library!r}, version={self.version}, "
            f"metadata={self.metadata!r}, data={type(self.data).__name__}, timestamp={self.timestamp})"
        )


@dataclass
class DataError:
    """A failed item of a batch call, in that item's slot (the batch itself does not raise).

    ``exception`` is the exception the single-item call would have raised; ``error_category`` its
    class name and ``exception_string`` its message.
    """

    symbol: str
    version_request_type: Optional[str]
    version_request_data: Any
    error_code: Optional[str]
    error_category: str
    exception_string: str
    exception: Optional[BaseException] = field(default=None, repr=False, compare=False)


class SymbolVersion(NamedTuple):
    """Key of :meth:`Library.list_versions`."""

    symbol: str
    version: int


class VersionInfo(NamedTuple):
    """Value of :meth:`Library.list_versions`."""

    date: pd.Timestamp
    deleted: bool
    snapshots: List[str]


class KeyType(enum.Enum):
    """The kinds of object a library stores (keys of :class:`AdminTools`' sizes), by ArcticDB's names
    where ArcticDB has the same kind; the value is Floe's name for it in storage."""

    TABLE_DATA = "tdata"
    TABLE_INDEX = "tindex"
    VERSION = "ver"
    VERSION_REF = "vref"
    SNAPSHOT = "snap"
    SNAPSHOT_REF = "sref"
    #: A chunk written by ``stage`` and not finalized yet (ArcticDB keeps these as APPEND_DATA).
    STAGED_INDEX = "sindex"
    LIBRARY_CONFIG = "cfg"


#: The kinds of object that belong to one symbol (the rest are the library's).
SYMBOL_KEY_TYPES = (KeyType.TABLE_DATA, KeyType.TABLE_INDEX, KeyType.VERSION, KeyType.VERSION_REF, KeyType.STAGED_INDEX)


class Size(NamedTuple):
    """Objects of one kind and their bytes as stored (compressed)."""

    bytes_compressed: int
    count: int


@dataclass(frozen=True)
class CompactDataInfo:
    """What :meth:`Library.compact_data` would do (:meth:`Library.compact_data_explain_plan`): the rows of
    each row slice of the latest version now and after, and the version it would commit."""

    row_slices_before: List[int]
    row_slices_after: List[int]
    version_id_before: int
    #: The version compact_data would make; ``version_id_before`` when it would write nothing.
    version_id_after: int

    @property
    def num_row_slices_before(self) -> int:
        return len(self.row_slices_before)

    @property
    def num_row_slices_after(self) -> int:
        return len(self.row_slices_after)

    @property
    def will_do_work(self) -> bool:
        """Whether compact_data would write a new version."""
        return self.version_id_after != self.version_id_before


class NameWithDType(NamedTuple):
    """A column and its (Arrow) type."""

    name: Any
    dtype: pa.DataType


class SymbolDescription(NamedTuple):
    """What :meth:`Library.get_description` returns (read from the version's index alone)."""

    columns: Tuple[NameWithDType, ...]
    index: Tuple[NameWithDType, ...]
    index_type: str  # "NA" (row count), "index" or "multi_index"
    row_count: int
    last_update_time: pd.Timestamp
    date_range: Tuple[Any, Any]
    sorted: str
    schema: pa.Schema  # the stored Arrow schema, index columns included
    segment_count: int
    operation: str
    version: int


class Verification(NamedTuple):
    """What :meth:`Library.verify` checked of one version: every object it stores, whole."""

    symbol: str
    version: int
    segments: int  # data segments, each once however many index entries name it
    bytes: int  # stored bytes: the index segment and every data segment


class ReadRequest(NamedTuple):
    """One read of :meth:`Library.read_batch`."""

    symbol: str
    as_of: Any = None
    date_range: Any = None
    row_range: Optional[Tuple[Optional[int], Optional[int]]] = None
    columns: Optional[List[Any]] = None
    output_format: Optional[str] = None


class ReadInfoRequest(NamedTuple):
    """One request of :meth:`Library.read_metadata_batch`."""

    symbol: str
    as_of: Any = None


class WritePayload(NamedTuple):
    """One item of :meth:`Library.write_batch` / :meth:`Library.append_batch` /
    :meth:`Library.write_pickle_batch`."""

    symbol: str
    data: Any
    metadata: Any = None
    index_column: Optional[str] = None


class UpdatePayload(NamedTuple):
    """One item of :meth:`Library.update_batch`: ``date_range`` as in :meth:`Library.update`."""

    symbol: str
    data: Any
    metadata: Any = None
    date_range: Any = None
    index_column: Optional[str] = None


class WriteMetadataPayload(NamedTuple):
    """One item of :meth:`Library.write_metadata_batch`."""

    symbol: str
    metadata: Any


class DeleteRequest(NamedTuple):
    """One item of :meth:`Library.delete_batch`: ``version_ids`` as ``versions`` in
    :meth:`Library.delete` (None: every version)."""

    symbol: str
    version_ids: Any = None
