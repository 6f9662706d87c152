"""One adapter per benchmarked system, all with the same small surface.

Floe and ArcticDB each keep one LMDB store in their own folder; Parquet keeps one file per symbol
(zstd, pyarrow's default row groups). An operation a system does not have raises ``Unsupported``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pandas as pd
import pyarrow as pa


class Unsupported(Exception):
    """The system has no such operation (e.g. appends to a Parquet file)."""


def folder_bytes(path: str) -> int:
    """Bytes the folder's files occupy on disk (allocated blocks, so sparse files count what they use)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


class LibrarySystem:
    """Floe and ArcticDB share ArcticDB's Library API; only opening and Arrow input differ."""

    name = "?"
    index_name = "ts"

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)
        self.lib = self._open(root)

    def _open(self, root: str) -> Any:
        raise NotImplementedError

    def write(self, sym: str, df: pd.DataFrame) -> None:
        self.lib.write(sym, df)

    def write_arrow(self, sym: str, table: pa.Table) -> None:
        raise NotImplementedError

    def write_batch(self, items: list) -> None:
        raise NotImplementedError

    def read(self, sym: str, fmt: str, date_range=None, columns=None, as_of=None) -> Any:
        return self.lib.read(sym, as_of=as_of, date_range=date_range, columns=columns, output_format=fmt).data

    def append(self, sym: str, df: pd.DataFrame) -> None:
        self.lib.append(sym, df)

    def update(self, sym: str, df: pd.DataFrame) -> None:
        self.lib.update(sym, df)

    def list_versions(self, sym: str) -> Any:
        return self.lib.list_versions(sym)

    def list_symbols(self) -> Any:
        return self.lib.list_symbols()

    def delete(self, sym: str) -> None:
        self.lib.delete(sym)

    def disk_bytes(self) -> int:
        return folder_bytes(self.root)


class Floe(LibrarySystem):
    """Floe through its public Python API (``floe.Store`` on ``lmdb://``)."""

    name = "floe"

    def _open(self, root: str) -> Any:
        import floe

        return floe.Store(f"lmdb://{root}").get_library("bench", create_if_missing=True)

    def write_arrow(self, sym: str, table: pa.Table) -> None:
        self.lib.write(sym, table, index_column=self.index_name)

    def write_batch(self, items: list) -> None:
        import floe

        self.lib.write_batch([floe.WritePayload(s, df) for s, df in items])

    def verify(self, sym: str) -> Any:
        """Floe only: every stored block of the symbol's latest version checked against its checksum,
        on the calling thread (its CPU is then the work's alone, no worker waiting for more)."""
        return self.lib.verify(sym, parallel=False)


class ArcticDB(LibrarySystem):
    """ArcticDB's public ``Arctic`` on ``lmdb://`` with default library options."""

    name = "arcticdb"

    def _open(self, root: str) -> Any:
        from arcticdb import Arctic

        lib = Arctic(f"lmdb://{root}").get_library("bench", create_if_missing=True)
        # Arrow input is still behind a private flag in 6.28 (see shared/reference/baseline.md).
        lib._nvs._set_allow_arrow_input(True)
        return lib

    def write_arrow(self, sym: str, table: pa.Table) -> None:
        # index_column=True: the table's first column is the timestamp index.
        self.lib.write(sym, table, index_column=True)

    def write_batch(self, items: list) -> None:
        from arcticdb import WritePayload

        self.lib.write_batch([WritePayload(s, df) for s, df in items])


class Parquet:
    """One Parquet file per symbol via pyarrow (zstd, default row groups); reads open the file each time."""

    name = "parquet"
    compression = "zstd"

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def _path(self, sym: str) -> str:
        return os.path.join(self.root, f"{sym}.parquet")

    def write(self, sym: str, df: pd.DataFrame) -> None:
        self.write_arrow(sym, pa.Table.from_pandas(df, preserve_index=True))

    def write_arrow(self, sym: str, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        pq.write_table(table, self._path(sym), compression=self.compression)

    def write_batch(self, items: list) -> None:
        for sym, df in items:
            self.write(sym, df)

    def read(self, sym: str, fmt: str, date_range=None, columns=None, as_of=None) -> Any:
        import pyarrow.parquet as pq

        if as_of is not None:
            raise Unsupported("versions")
        filters = None
        if date_range is not None:
            filters = [("ts", ">=", date_range[0]), ("ts", "<=", date_range[1])]
        cols = None if columns is None else ["ts", *columns]
        if fmt == "polars":
            import polars as pl

            return pl.read_parquet(self._path(sym), columns=cols)
        table = pq.read_table(self._path(sym), columns=cols, filters=filters)
        return table.to_pandas() if fmt == "pandas" else table

    def append(self, sym: str, df: pd.DataFrame) -> None:
        raise Unsupported("append")

    def update(self, sym: str, df: pd.DataFrame) -> None:
        raise Unsupported("update")

    def list_versions(self, sym: str) -> Any:
        raise Unsupported("versions")

    def list_symbols(self) -> Any:
        return [f[: -len(".parquet")] for f in os.listdir(self.root) if f.endswith(".parquet")]

    def delete(self, sym: str) -> None:
        os.remove(self._path(sym))

    def disk_bytes(self) -> int:
        return folder_bytes(self.root)


SYSTEMS = {"floe": Floe, "arcticdb": ArcticDB, "parquet": Parquet}


def open_system(name: str, root: str) -> Any:
    """A fresh adapter for system ``name`` keeping its data under ``root`` (which is emptied first)."""
    shutil.rmtree(root, ignore_errors=True)
    return SYSTEMS[name](root)


