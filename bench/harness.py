"""Floe side by side with ArcticDB and Parquet: one run, the same data, alternating systems.

Usage (bench/run.sh sets up the environment first):
    python bench/harness.py [--quick] [--out FILE.json] [--only SECTION,...]

Every system lives in its own worker process (worker.py) that generates the same seeded data. For
each operation the systems take turns: repetition r runs them in an order rotated by r, after one
warm-up round. Per-call operations (appends, many small writes) alternate system on every call.
Results (every call's figures) go to a JSON file that report.py turns into tables.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import worker

SIZES = {
    "quick": {
        "wide-float": 1_000_000, "ticks": 500_000, "wide": 1_000, "appends": 20, "versions": 50,
        "symbols": 100, "scaling": [1_000_000], "reps": 2, "scaling_reps": 3,
    },
    "full": {
        "wide-float": 10_000_000, "ticks": 10_000_000, "wide": 10_000, "appends": 1000, "versions": 10_000,
        "symbols": 10_000, "scaling": [1_000_000, 2_000_000, 4_000_000, 8_000_000, 16_000_000], "reps": 5,
        "scaling_reps": 7,
    },
}
SECTIONS = ["wide-float", "ticks", "wide", "meta", "scaling"]
LIB_SYSTEMS = ["floe", "arcticdb"]
ALL_SYSTEMS = ["floe", "arcticdb", "parquet"]
#: The Floe-only step timing `Library.verify` of the dataset's symbol (report.py's checksum target).
VERIFY_OP = "verify every stored block (Floe)"
SUBSET = {"wide-float": ["f0", "f5"], "ticks": ["price", "symbol"], "wide": [f"c{i}" for i in range(0, 1000, 100)]}


class Pool:
    """The worker processes, addressed by system name."""

    def __init__(self, names: List[str], workdir: str) -> None:
        ctx = mp.get_context("spawn")
        self.conns: Dict[str, Any] = {}
        self.procs = []
        for name in names:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker.main, args=(child, name, workdir), name=f"bench-{name}")
            p.start()
            self.conns[name] = parent
            self.procs.append(p)

    def call(self, system: str, op: str, **args: Any) -> Dict[str, Any]:
        self.conns[system].send({"op": op, "args": args})
        return self.conns[system].recv()

    def close(self) -> None:
        for c in self.conns.values():
            c.send(None)
        for p in self.procs:
            p.join(timeout=60)


class Run:
    """Collects every measurement of the run."""

    def __init__(self, pool: Pool, reps: int, log) -> None:
        self.pool = pool
        self.reps = reps
        self.records: List[Dict[str, Any]] = []
        self.facts: Dict[str, Any] = {}
        self.log = log

    def record(self, section: str, op: str, system: str, rep: int, reply: Dict[str, Any], warmup: bool = False) -> None:
        rec = {"section": section, "op": op, "system": system, "rep": rep, "warmup": warmup}
        rec.update({k: v for k, v in reply.items() if k != "trace"})
        if "error" in reply:
            self.log(f"  ! {section} / {op} / {system}: {reply['error']}\n{reply.get('trace', '')}")
        self.records.append(rec)

    def timed(self, section: str, op: str, cmds: Dict[str, tuple], reps: Optional[int] = None, warmup: int = 1) -> None:
        """Run ``cmds[system] = (worker op, args)`` for every system: ``warmup`` rounds, then ``reps``
        rounds, the order of systems rotated each round."""
        reps = self.reps if reps is None else reps
        names = list(cmds)
        t0 = time.time()
        for r in range(warmup + reps):
            k = r % len(names)
            for system in names[k:] + names[:k]:
                wop, args = cmds[system]
                reply = self.pool.call(system, wop, **args)
                self.record(section, op, system, r - warmup, reply, warmup=r < warmup)
        self.log(f"  {section}: {op} ({time.time() - t0:.1f} s) {self.summary(section, op)}")

    def per_call(self, section: str, op: str, systems: List[str], n: int, wop: str, args_of) -> None:
        """``n`` calls per system, alternating system on every call (the order flips each call)."""
        t0 = time.time()
        for i in range(n):
            order = systems if i % 2 == 0 else systems[::-1]
            for system in order:
                self.record(section, op, system, i, self.pool.call(system, wop, **args_of(i)))
        self.log(f"  {section}: {op} x{n} ({time.time() - t0:.1f} s) {self.summary(section, op)}")

    def summary(self, section: str, op: str) -> str:
        parts = []
        for system in dict.fromkeys(r["system"] for r in self.records if r["section"] == section and r["op"] == op):
            xs = sorted(r["s"] for r in self.records if r["section"] == section and r["op"] == op and r["system"] == system and not r["warmup"] and "s" in r)
            parts.append(f"{system}={xs[len(xs) // 2]:.4g}s" if xs else f"{system}=n/a")
        return " ".join(parts)


def dataset_section(run: Run, name: str, rows: int, appends: int) -> None:
    pool = run.pool
    systems = ALL_SYSTEMS
    extra = appends * worker.APPEND_ROWS if name != "wide" else 0
    for s in systems + ["physical"]:
        pool.call(s, "open", dataset=name)
    facts = {}
    for s in systems:
        facts = pool.call(s, "load", dataset=name, rows=rows, extra=extra)
    run.facts[name] = facts
    run.log(f"[{name}] {rows:,} rows x {facts['cols']} columns, {facts['bytes'] / 1e6:.1f} MB")

    # The first write into a fresh store gives the on-disk size of one version.
    for s in systems:
        reply = pool.call(s, "write", sym="data", disk=True, drop=False)
        run.record(name, "first write (fresh store)", s, 0, reply)
        run.facts[f"{name}/disk/{s}"] = reply.get("disk_bytes")
    run.log(f"  disk: " + ", ".join(f"{s}={run.facts[f'{name}/disk/{s}'] / 1e6:.1f} MB" for s in systems if run.facts.get(f"{name}/disk/{s}")))

    # The reference for the write target: write(2) + fdatasync of as many bytes as Floe stores.
    floor = {"physical": ("file_write", {"bytes": run.facts.get(f"{name}/disk/floe") or facts["bytes"]})}
    run.timed(name, "write (pandas in)", {s: ("write", {}) for s in systems} | floor)
    run.timed(name, "write (pyarrow in)", {s: ("write_arrow", {}) for s in systems} | floor)
    cols = SUBSET[name]
    ncols = facts["cols"] + 1
    reads = [
        ("read full -> pyarrow", {"fmt": "pyarrow"}),
        ("read full -> pandas", {"fmt": "pandas"}),
        ("read full -> polars", {"fmt": "polars"}),
        ("read date_range 10% -> pyarrow", {"fmt": "pyarrow", "date_range": (0.45, 0.55)}),
        ("read date_range 0.1% -> pyarrow", {"fmt": "pyarrow", "date_range": (0.5, 0.501)}),
        ("read date_range 10% -> pandas", {"fmt": "pandas", "date_range": (0.45, 0.55)}),
        (f"read {len(cols)} of {facts['cols']} columns -> pyarrow", {"fmt": "pyarrow", "columns": cols}),
        (f"read {len(cols)} of {facts['cols']} columns -> pandas", {"fmt": "pandas", "columns": cols}),
    ]
    subset_bytes = 8 * rows + sum(facts["col_bytes"][c] for c in cols)
    for label, args in reads:
        cmds = {s: ("read", args) for s in systems}
        if label == "read full -> pyarrow" and name != "ticks":
            # The reference for the read target: allocate and first-touch the same bytes, column by column.
            cmds["physical"] = ("alloc_touch", {"cols": ncols, "rows": rows})
        elif label.endswith("-> pyarrow") and "date_range" in args:
            # The floor of a part read: fresh memory for its share of the bytes and a table over it.
            lo, hi = args["date_range"]
            part = max(1, int(hi * rows) - int(lo * rows))
            cmds["physical"] = ("fresh_table", {"cols": ncols, "rows": part, "bytes": facts["bytes"] * part // rows})
        elif label.endswith("-> pyarrow") and "columns" in args:
            cmds["physical"] = ("fresh_table", {"cols": len(cols) + 1, "rows": rows, "bytes": subset_bytes})
        run.timed(name, label, cmds)
    # Floe only: checking every stored block of the version against its checksum, without decoding,
    # for the checksum target (its CPU against the full read's).
    run.timed(name, VERIFY_OP, {"floe": ("verify", {})})

    if extra:
        n = appends
        # The appended symbol gets a store of its own, so the disk growth per append is its alone.
        for s in LIB_SYSTEMS:
            pool.call(s, "open", dataset=name, store="appends")
            run.record(name, "write append base", s, 0, pool.call(s, "write", sym="app", drop=False, store="appends"))
            run.facts[f"{name}/disk_before_appends/{s}"] = pool.call(s, "disk", store="appends").get("disk_bytes")
            run.record(name, "write unfragmented reference", s, 0, pool.call(s, "write_full", sym="app_ref", chunks=n))
        run.per_call(name, f"append {worker.APPEND_ROWS} rows (per call)", LIB_SYSTEMS, n, "append", lambda i: {"i": i, "store": "appends"})
        for s in LIB_SYSTEMS:
            run.facts[f"{name}/disk_after_appends/{s}"] = pool.call(s, "disk", store="appends").get("disk_bytes")
        run.facts[f"{name}/appends"] = n
        for fmt in ("pyarrow", "pandas"):
            run.timed(name, f"read after {n} appends -> {fmt}", {s: ("read", {"fmt": fmt, "sym": "app", "store": "appends"}) for s in LIB_SYSTEMS})
            run.timed(name, f"read unfragmented (same rows) -> {fmt}", {s: ("read", {"fmt": fmt, "sym": "app_ref"}) for s in LIB_SYSTEMS})
        for s in LIB_SYSTEMS:
            pool.call(s, "delete", sym="app", store="appends")
            pool.call(s, "delete", sym="app_ref")

    for s in LIB_SYSTEMS:
        pool.call(s, "write", sym="upd", drop=False)
    run.timed(name, "update 1% range", {s: ("update", {"i": 0}) for s in LIB_SYSTEMS})
    for s in systems:
        pool.call(s, "unload")


def meta_section(run: Run, versions: int, symbols: int) -> None:
    pool = run.pool
    for s in LIB_SYSTEMS:
        pool.call(s, "open", dataset="meta")
    run.log(f"[meta] {versions:,} versions of one symbol, {symbols:,} symbols")
    run.per_call("meta", "write 10-row version (per call)", LIB_SYSTEMS, versions, "write_tiny", lambda i: {"sym": "ver", "i": i})
    # The floors: the result objects ArcticDB's API defines, made from columns already in memory; a
    # 10-row table (or frame) over fresh memory, as one version of `data.tiny` reads back.
    floor = {"physical": ("version_objects", {"n": versions})}
    run.timed("meta", f"list_versions ({versions:,} versions)", {s: ("list_versions", {"sym": "ver"}) for s in LIB_SYSTEMS} | floor)
    for fmt in ("pyarrow", "pandas"):
        floor = {"physical": ("fresh_table", {"cols": 3, "rows": 10, "bytes": 240, "pandas": fmt == "pandas"})}
        run.timed("meta", f"read(as_of=0) ({versions:,} versions) -> {fmt}", {s: ("read", {"fmt": fmt, "sym": "ver", "as_of": 0}) for s in LIB_SYSTEMS} | floor)
        run.timed("meta", f"read latest ({versions:,} versions) -> {fmt}", {s: ("read", {"fmt": fmt, "sym": "ver"}) for s in LIB_SYSTEMS})
    chunk = min(500, symbols)
    run.per_call("meta", f"write_batch {chunk} symbols (per call)", LIB_SYSTEMS, symbols // chunk, "write_batch_tiny", lambda i: {"start": i * chunk, "count": chunk})
    run.timed("meta", f"list_symbols ({symbols + 1:,} symbols)", {s: ("list_symbols", {}) for s in LIB_SYSTEMS})


def scaling_section(run: Run, sizes: List[int], reps: int) -> None:
    pool = run.pool
    for s in ALL_SYSTEMS:
        pool.call(s, "open", dataset="scaling")
    for rows in sizes:
        for s in ALL_SYSTEMS:
            facts = pool.call(s, "load", dataset="wide-float", rows=rows)
        sec = f"scaling {rows // 1_000_000}M"
        run.facts[sec] = facts
        run.log(f"[{sec}] wide-float {rows:,} rows, {facts['bytes'] / 1e6:.0f} MB")
        for s in ALL_SYSTEMS:
            run.record(sec, "write (pandas in)", s, 0, pool.call(s, "write", sym="data", drop=False))
        cmds = {s: ("read", {"fmt": "pyarrow"}) for s in ALL_SYSTEMS}
        cmds["physical"] = ("alloc_touch", {"cols": facts["cols"] + 1, "rows": rows})
        run.timed(sec, "read full -> pyarrow", cmds, reps=reps)
        for s in ALL_SYSTEMS:
            pool.call(s, "delete", sym="data")
            pool.call(s, "unload")


def machine() -> Dict[str, Any]:
    def sh(cmd: str) -> str:
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""

    from importlib.metadata import version

    return {
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
        "cores": os.cpu_count(),
        "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {p: version(p) for p in ("floe-db", "arcticdb", "pyarrow", "pandas", "polars", "numpy")},
        "git": sh("git -C %s rev-parse --short HEAD" % os.path.dirname(os.path.abspath(__file__))),
        "git_dirty": bool(sh("git -C %s status --porcelain -- engine formats backends pyarrow-bridge" % os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))),
        "nice": os.nice(0),
        "autogroup": sh("cat /proc/self/autogroup"),
        "thp": sh("cat /sys/kernel/mm/transparent_hugepage/enabled"),
        "loadavg_start": os.getloadavg(),
        # How much of the extension's code layout the build got (D62): a stale order file is slower.
        "symbol_order": sh("%s %s check" % (sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "symbol_order.py"))),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    ap.add_argument("--out", help="results JSON (default scratch/bench/results-<mode>.json)")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--workdir", help="where the stores go (default scratch/bench/data)")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    out = args.out or os.path.join(repo, "scratch", "bench", f"results-{mode}.json")
    workdir = args.workdir or os.path.join(repo, "scratch", "bench", "data")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    only = args.only.split(",") if args.only else SECTIONS

    started = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - started:7.1f}s] {msg}", flush=True)

    pool = Pool(ALL_SYSTEMS + ["physical"], workdir)
    run = Run(pool, cfg["reps"], log)
    run.facts["machine"] = machine()
    run.facts["mode"] = mode
    run.facts["sizes"] = cfg
    run.facts["command"] = " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    log(f"mode {mode}; {cfg['reps']} timed repetitions after 1 warm-up; stores in {workdir}")
    try:
        for sec in only:
            if sec in ("wide-float", "ticks", "wide"):
                dataset_section(run, sec, cfg[sec], cfg["appends"])
            elif sec == "meta":
                meta_section(run, cfg["versions"], cfg["symbols"])
            elif sec == "scaling":
                scaling_section(run, cfg["scaling"], cfg["scaling_reps"])
            with open(out, "w") as f:  # after every section, so an interrupted run keeps what it measured
                json.dump({"facts": run.facts, "records": run.records}, f)
    finally:
        pool.close()
        shutil.rmtree(workdir, ignore_errors=True)
    run.facts["seconds"] = time.time() - started
    run.facts["loadavg_end"] = os.getloadavg()
    with open(out, "w") as f:
        json.dump({"facts": run.facts, "records": run.records}, f)
    log(f"done in {time.time() - started:.0f} s; results in {out}")


if __name__ == "__main__":
    main()
