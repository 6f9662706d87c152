"""A worker process: one system (or the 'physical' reference) and its copy of the current dataset.

The orchestrator sends one command at a time over a pipe and gets back one reply: a dict with the
figures from ``measure`` (timed commands) or plain facts (setup commands). Errors are returned, not
raised, so one failing operation of one system does not stop the run.
"""

from __future__ import annotations

import os
import traceback
from typing import Any, Dict

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
        return {"bytes": data.logical_bytes(self.base), "rows": rows, "cols": self.base.shape[1]}

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
            del out
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
            # The reference for the write target: what any durable store must at least do to keep
            # ``bytes`` bytes (Floe's on-disk size of the version): write(2) them from memory already
            # touched into a new file and fdatasync it. Page-cache work dominates on this VM.
            path = os.path.join(self.workdir, "physical-write.bin")
            chunk = np.random.default_rng(0).integers(0, 256, 8 << 20, dtype=np.uint8).tobytes()
            total = int(a["bytes"])

            def write():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    left = total
                    while left > 0:
                        left -= os.write(fd, chunk[: min(left, len(chunk))])
                    os.fdatasync(fd)
                finally:
                    os.close(fd)

            try:
                fig, _ = measure(write)
            finally:
                os.unlink(path)
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
            del out
            return fig
        raise ValueError(f"unknown op {op!r}")


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
