"""Floe: a versioned, log-structured dataframe store, with ArcticDB's Python API.

::

    import floe
    store = floe.Store("lmdb:///tmp/floe-data")
    lib = store.get_library("prices", create_if_missing=True)
    lib.write("AAPL", df, metadata={"source": "demo"})
    lib.read("AAPL", date_range=(start, end), columns=["bid"]).data

``Arctic`` is an alias of :class:`Store` for code written against ArcticDB.
"""

from . import errors
from ._floe import __version__
from ._admin import AdminTools
from ._library import Library, Store
from ._strings import ArrowOutputStringFormat
from ._types import (
    CompactDataInfo,
    DataError,
    DeleteRequest,
    KeyType,
    LibraryOptions,
    ModifiableLibraryOption,
    NameWithDType,
    OutputFormat,
    ReadInfoRequest,
    ReadRequest,
    Size,
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
from .errors import (
    AlreadyExists,
    CommitConflict,
    CorruptData,
    FloeError,
    InternalError,
    InvalidConfig,
    InvalidInput,
    LibraryNotFound,
    NotFound,
    SchemaMismatch,
    SnapshotNotFound,
    StorageError,
    SymbolNotFound,
    UnsortedIndex,
    VersionNotFound,
)

Arctic = Store

__all__ = [
    "Arctic",
    "Store",
    "Library",
    "LibraryOptions",
    "ModifiableLibraryOption",
    "OutputFormat",
    "ArrowOutputStringFormat",
    "VersionedItem",
    "DataError",
    "CompactDataInfo",
    "AdminTools",
    "KeyType",
    "Size",
    "SymbolVersion",
    "VersionInfo",
    "NameWithDType",
    "SymbolDescription",
    "Verification",
    "ReadRequest",
    "ReadInfoRequest",
    "WritePayload",
    "UpdatePayload",
    "WriteMetadataPayload",
    "DeleteRequest",
    "StagedDataFinalizeMethod",
    "StageResult",
    "errors",
    "FloeError",
    "NotFound",
    "SymbolNotFound",
    "VersionNotFound",
    "SnapshotNotFound",
    "LibraryNotFound",
    "InvalidInput",
    "SchemaMismatch",
    "UnsortedIndex",
    "InvalidConfig",
    "AlreadyExists",
    "CommitConflict",
    "CorruptData",
    "StorageError",
    "InternalError",
    "__version__",
]
