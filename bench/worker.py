"""A worker process: one system (or the 'physical' reference) and its copy of the current dataset.

The orchestrator sends one command at a time over a pipe and gets back one reply: a dict with the
figures from ``measure`` (timed commands) or plain facts (setup commands). Errors are returned, not
raised, so one failing operation of one system does not stop the run.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import numpy as np
import pandas as pd
import pyarrow as pa

import data
import systems
from measure import measure

APPEND_ROWS = 1000


class Worker:
    """State of one worker: its system adapter and the dataset it holds."""

    def __init__(self, system: str, workdir: str) -> None:
        self.system_name = system
        self.workdir = workdir
        self.stores: Dict[str, Any] = {}  # store name -> adapter; commands pick one with `store`
        self.df: pd.DataFrame | None = None  # all generated rows (the base plus the append tail)
        self.rows = 0
        # The last read's result (or reference's memory), kept until this worker's next command: see
        # `run`.
        self.held: Any = None

    # ----- setup -----
    def open(self, dataset: str, store: str = "main") -> Dict[str, Any]:
        """A fresh store (emptied folder) for ``dataset``; ``store`` names it when a section needs more
        than one (the appends get their own, so their disk growth is measured alone)."""
        if self.system_name != "physical":
            folder = os.path.join(self.workdir, dataset, f"{self.system_name}-{store}")
            self.stores[store] = systems.open_system(self.system_name, folder)
        return {}

    def load(self, dataset: str, rows: int, extra: int = 0) -> Dict[str, Any]:
        self.df = None
        self.df = data.make(dataset, rows + extra)
        self.rows = rows
        self.base = self.df.iloc[:rows]
        self.table = pa.Table.from_pandas(self.base, preserve_index=True)
        # Put the index first: ArcticDB's Arrow input takes the first column as the index.
        self.table = self.table.select(["ts", *[c for c in self.table.column_names if c != "ts"]])
        col_bytes = {str(c): data.logical_bytes(self.base[[c]]) - 8 * rows for c in self.base.columns}
        return {"bytes": data.logical_bytes(self.base), "rows": rows, "cols": self.base.shape[1], "col_bytes": col_bytes}

    def unload(self) -> Dict[str, Any]:
        self.df = self.base = self.table = None
        return {}

    # ----- helpers -----
    def _date_range(self, lo: float, hi: float):
        idx = self.base.index
        a = int(lo * self.rows)
        b = max(a + 1, int(hi * self.rows))
        return idx[a], idx[b - 1]

    def _chunk(self, i: int) -> pd.DataFrame:
        start = self.rows + i * APPEND_ROWS
        return self.df.iloc[start : start + APPEND_ROWS]

    # ----- commands -----
    def run(self, cmd: Dict[str, Any]) -> Dict[str, Any]:
        op = cmd["op"]
        a = dict(cmd.get("args", {}))
        # The previous result is released here, just before the next call's collection and trim
        # (`measure`), not when it was made: every system's memory then goes back to the kernel a
        # moment before that system asks for memory again. Allocators that keep freed memory until
        # `malloc_trim` (ArcticDB's, through glibc's heap) always had this; results that are mappings
        # of their own (Floe's outputs, numpy's large arrays in the reference) went back to the kernel
        # when dropped, and by their system's next call, seconds of other systems' calls later, this
        # VM's balloon may have handed their pages to the host, whose refault costs 2-3x the kernel
        # time of the same page faults (bench/RESULTS.md, run AD). Each call still faults in all the
        # memory it uses.
        self.held = None
        if op in ("open", "load", "unload"):
            return getattr(self, op)(**a)
        s = self.stores.get(a.pop("store", "main"))
        if op == "write":
            sym = a.get("sym", "w")
            fig, _ = measure(lambda: s.write(sym, self.base))
            if a.get("disk"):
                fig["disk_bytes"] = s.disk_bytes()
            if a.get("drop", True):
                s.delete(sym)
            return fig
        if op == "write_arrow":
            fig, _ = measure(lambda: s.write_arrow("w", self.table))
            s.delete("w")
            return fig
        if op == "write_full":  # the base plus every append chunk in one write (the unfragmented reference)
            n = self.rows + a["chunks"] * APPEND_ROWS
            fig, _ = measure(lambda: s.write(a["sym"], self.df.iloc[:n]))
            return fig
        if op == "read":
            dr = self._date_range(*a["date_range"]) if a.get("date_range") else None
            fig, out = measure(lambda: s.read(a.get("sym", "data"), a["fmt"], date_range=dr, columns=a.get("columns"), as_of=a.get("as_of")))
            fig["rows_out"] = len(out)
            if isinstance(getattr(out, "nbytes", None), int):  # pyarrow tables: the output's bytes
                fig["out_bytes"] = out.nbytes
            self.held = out
            return fig
        if op == "verify":
            fig, out = measure(lambda: s.verify(a.get("sym", "data")))
            fig["verified_bytes"] = out.bytes
            return fig
        if op == "append":
            chunk = self._chunk(a["i"])
            fig, _ = measure(lambda: s.append(a.get("sym", "app"), chunk), fresh=False)
            return fig
        if op == "update":
            n = max(1, self.rows // 100)
            lo = self.rows // 2 + a["i"] * 7  # a slightly different 1% range each time
            part = self.base.iloc[lo : lo + n].copy()
            num = part.select_dtypes(include=[np.number]).columns
            part[num] = part[num] + 1
            fig, _ = measure(lambda: s.update("upd", part))
            return fig
        if op == "write_tiny":
            df = data.tiny(a["i"])
            fig, _ = measure(lambda: s.write(a["sym"], df), fresh=False)
            return fig
        if op == "write_batch_tiny":
            items = [(f"sym{j:06d}", data.tiny(j)) for j in range(a["start"], a["start"] + a["count"])]
            fig, _ = measure(lambda: s.write_batch(items), fresh=False)
            return fig
        if op == "list_versions":
            fig, out = measure(lambda: s.list_versions(a["sym"]))
            fig["n"] = len(out)
            return fig
        if op == "list_symbols":
            fig, out = measure(lambda: s.list_symbols())
            fig["n"] = len(out)
            return fig
        if op == "disk":
            return {"disk_bytes": s.disk_bytes()}
        if op == "delete":
            s.delete(a["sym"])
            return {}
        if op == "file_write":
            # The references for the write target: what any durable store must at least do to keep
            # ``bytes`` bytes (Floe's on-disk size of the version): write(2) them from memory already
            # touched and fdatasync them, over a file that already holds that many bytes (a store
            # reuses the pages of versions it pruned, as LMDB does, so the file system allocates
            # nothing). Runs before 2026-12-06 evening wrote a new file each time, which on this VM
            # took about twice as long. And (runs from 2026-12-07 on, ``lmdb_s``) what LMDB alone
            # takes to store them: the floor of any write to an LMDB store.
            path = os.path.join(self.workdir, "physical-write.bin")
            chunk = np.random.default_rng(0).integers(0, 256, 8 << 20, dtype=np.uint8).tobytes()
            total = int(a["bytes"])

            def write(flags: int) -> None:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
                try:
                    left = total
                    while left > 0:
                        left -= os.write(fd, chunk[: min(left, len(chunk))])
                    os.fdatasync(fd)
                finally:
                    os.close(fd)

            try:
                write(os.O_TRUNC)  # the file's blocks, allocated and on disk before the timed write
                fig, _ = measure(lambda: write(0))
            finally:
                os.unlink(path)
            lmdb_s = lmdb_alone(os.path.join(self.workdir, "physical-lmdb"), total)
            if lmdb_s is not None:
                fig["lmdb_s"] = lmdb_s
            return fig
        if op == "alloc_touch":
            ncols, nrows = a["cols"], a["rows"]

            def touch():
                cols = [np.empty(nrows, dtype=np.float64) for _ in range(ncols)]
                for c in cols:
                    c.fill(1.0)
                return cols

            # 4 KiB pages, as the engine's allocations get: numpy's default madvise(MADV_HUGEPAGE) makes
            # first touch depend on the kernel finding free 2 MiB pages, which on this shared VM is
            # several times slower and erratic.
            from numpy._core.multiarray import _set_madvise_hugepage

            was = _set_madvise_hugepage(False)
            try:
                fig, out = measure(touch)
            finally:
                _set_madvise_hugepage(was)
            self.held = out
            return fig
        if op == "fresh_table":
            # The floor of a read's result: fresh memory for its bytes and a table (or a pandas frame)
            # over it, made the cheapest way there is (below). Any reader returning a new table pays at
            # least this; the reads in the same run are measured against it.
            fig, out = measure(lambda: fresh_table(a["cols"], a["rows"], a["bytes"], a.get("pandas", False)))
            self.held = out
            return fig
        if op == "version_objects":
            # The floor of ``list_versions``: the result ArcticDB's API defines (a dict of ``n``
            # SymbolVersion keys and VersionInfo values with a tz-aware pd.Timestamp each), built from
            # columns already in memory, as Floe's engine hands them over.
            from floe._library import _timestamps
            from floe._types import SymbolVersion, VersionInfo

            n = a["n"]
            names, versions = ["ver"] * n, list(range(n))
            stamps = np.int64(1_700_000_000_000_000_000) + np.arange(n, dtype=np.int64) * 1_000_000
            deleted, snaps = [False] * n, [[] for _ in range(n)]
            make = tuple.__new__

            def objects():
                dates = _timestamps(stamps)
                return {make(SymbolVersion, (s, v)): make(VersionInfo, (d, g, h)) for s, v, d, g, h in zip(names, versions, dates, deleted, snaps)}

            fig, out = measure(objects)
            del out
            return fig
        raise ValueError(f"unknown op {op!r}")


#: Values of about this size go in one LMDB transaction each in ``lmdb_alone``: LMDB's fastest way
#: measured here (32 values of 2.5 MB 34-38 ms against 8 of 10 MB 40-47 ms, one transaction each;
#: several values in one transaction slower, design/decisions.md D53), and the size of Floe's `wide`
#: segments since D53 (10 MB before).
_LMDB_VALUE = 2_500_000


def lmdb_alone(folder: str, total: int) -> float | None:
    """Seconds LMDB alone takes to store ``total`` bytes durably, in values of ~2.5 MB with one write
    transaction each, their meta pages synced once by a reference written after them (its fastest way
    here, and how Floe stores a write's segments since D59: ``backends/examples/lmdb_floor.rs``), in an environment
    kept in ``folder`` across calls so that pages are reused as in a store that prunes. The lower bound
    of any LMDB-backed write of that many bytes, ArcticDB's and Floe's. ``None`` if the example is not
    built (``FLOE_LMDB_FLOOR`` names it; ``bench/run.sh`` builds it)."""
    exe = os.environ.get("FLOE_LMDB_FLOOR")
    if not exe or not os.path.exists(exe):
        return None
    count = max(1, round(total / _LMDB_VALUE))
    out = subprocess.run([exe, folder, str(count), str(total // count), "1", "per-value"], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "one transaction per value" in l)
    return float(line.split("median")[1].split()[0]) / 1e3


_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_MADV_NOHUGEPAGE, _MADV_POPULATE_WRITE = 15, 23
_POPULATE_CHUNK = 4 << 20
_POPULATE_POOL = ThreadPoolExecutor(2)
#: Results smaller than this come from the allocator (a mapping of their own would cost more).
_SMALL_TABLE = 64 << 10


def fresh_table(ncols: int, nrows: int, nbytes: int, pandas: bool) -> Any:
    """``ncols`` float64 columns holding ``nbytes`` in all (``nrows`` rows for the pandas frame) in
    one fresh anonymous mapping with 4 KiB pages (as the engine's outputs get on this VM, D35),
    faulted in by ``MADV_POPULATE_WRITE`` in 4 MiB chunks on two threads (the fastest way to get
    fresh memory measured here, D37; ctypes releases the GIL), then a pyarrow table over the columns
    without a copy, or for ``pandas`` a frame with the first column as its DatetimeIndex. Below
    ``_SMALL_TABLE`` bytes the memory is the allocator's."""
    per_col = max(8, nbytes // ncols // 8 * 8)
    size = per_col * ncols
    if size < _SMALL_TABLE:
        return _table(np.zeros(size // 8), ncols, nrows, per_col // 8, pandas)
    mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    anchor = ctypes.c_char.from_buffer(mem)
    try:
        addr = ctypes.addressof(anchor)
        length = (size + 4095) // 4096 * 4096
        _LIBC.madvise(addr, length, _MADV_NOHUGEPAGE)
        chunks = [(addr + off, min(_POPULATE_CHUNK, length - off)) for off in range(0, length, _POPULATE_CHUNK)]
        if len(chunks) == 1:
            _LIBC.madvise(chunks[0][0], chunks[0][1], _MADV_POPULATE_WRITE)
        else:
            list(_POPULATE_POOL.map(lambda c: _LIBC.madvise(c[0], c[1], _MADV_POPULATE_WRITE), chunks))
    finally:
        del anchor  # the mapping's buffer export; the arrays below hold their own
    return _table(np.frombuffer(mem, np.float64), ncols, nrows, per_col // 8, pandas)


def _table(values: np.ndarray, ncols: int, nrows: int, n: int, pandas: bool) -> Any:
    """``fresh_table``'s result over ``values``: ``ncols`` columns of ``n`` values each."""
    if pandas:
        cols: List[np.ndarray] = [values[i * n : i * n + nrows] for i in range(ncols)]
        index = pd.DatetimeIndex(cols[0].view("M8[ns]"), name="ts")
        return pd.DataFrame({f"c{i}": c for i, c in enumerate(cols[1:])}, index=index, copy=False)
    # One Arrow array over the whole mapping, sliced per column: the cheapest way measured to make a
    # table of many columns from Python (1,001 columns: ~1.1 ms, against ~2.5 ms with an array each).
    whole = pa.array(values)
    return pa.Table.from_arrays([whole.slice(i * n, n) for i in range(ncols)], names=[f"c{i}" for i in range(ncols)])


def main(conn, system: str, workdir: str) -> None:
    """Serve commands from ``conn`` until it sends None."""
    w = Worker(system, workdir)
    while True:
        cmd = conn.recv()
        if cmd is None:
            break
        try:
            reply = w.run(cmd)
        except systems.Unsupported as e:
            reply = {"unsupported": str(e)}
        except Exception as e:  # reported in the results, the run goes on
            reply = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc(limit=5)}
        conn.send(reply)
