"""Floe's exceptions: one hierarchy under :class:`FloeError`, one class per engine error kind.

The Rust extension raises these (it looks the classes up here by name), and the Python layer raises
them for input it rejects before anything is written. Classes mix in the built-in exception Python
code already expects where one fits: ``ValueError`` for bad input, ``LookupError`` for missing things.

::

    FloeError
    ├── NotFound (LookupError)
    │   ├── SymbolNotFound
    │   ├── VersionNotFound
    │   ├── SnapshotNotFound
    │   └── LibraryNotFound
    ├── InvalidInput (ValueError)
    │   ├── SchemaMismatch
    │   └── UnsortedIndex
    ├── InvalidConfig (ValueError)
    ├── AlreadyExists
    ├── CommitConflict
    ├── CorruptData
    ├── StorageError (OSError)
    └── InternalError
"""

from __future__ import annotations

__all__ = [
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
]


class FloeError(Exception):
    """Base class of every error Floe raises."""


class NotFound(FloeError, LookupError):
    """The symbol, version, snapshot or library does not exist."""


class SymbolNotFound(NotFound):
    """The symbol does not exist, or has no live version."""


class VersionNotFound(NotFound):
    """The symbol exists but not the requested version (or none at the requested time)."""


class SnapshotNotFound(NotFound):
    """No snapshot of that name, or it does not hold the symbol."""


class LibraryNotFound(NotFound):
    """No library of that name."""


class InvalidInput(FloeError, ValueError):
    """The data or arguments are wrong (unsupported dtype, bad name...). Nothing was written."""


class SchemaMismatch(InvalidInput):
    """The data's columns or types differ from the symbol's (append/update need the same schema)."""


class UnsortedIndex(InvalidInput):
    """The timestamp index is not sorted ascending, or an append starts before the symbol's end."""


class InvalidConfig(FloeError, ValueError):
    """The store URI or library options are invalid."""


class AlreadyExists(FloeError):
    """A library, snapshot or symbol (rename target) of that name already exists."""


class CommitConflict(FloeError):
    """Other writers won the commit race too many times in a row; nothing was committed. Retry."""


class CorruptData(FloeError):
    """Stored bytes failed verification (checksum or structure)."""


class StorageError(FloeError, OSError):
    """The storage could not be reached or refused the request (after retries)."""


class InternalError(FloeError):
    """A bug or an unexpected storage failure."""
