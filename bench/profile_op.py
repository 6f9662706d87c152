"""One Floe operation in a loop, for a profiler: ``perf record -g -- python bench/profile_op.py read``.

    python bench/profile_op.py {write,write-pandas,read,read-pandas,read-2-columns,read-index,append,read-appended}
                               [--rows N] [--times K]

Writes the wide-float dataset (bench/data.py) into a fresh LMDB store under scratch/bench/profile first
(untimed unless the operation is a write), then runs the operation K times and prints each time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import pyarrow as pa

import data
from measure import release_free_memory


def main() -> None:
    ap = argparse.ArgumentParser()
    ops = ["write", "write-pandas", "read", "read-pandas", "read-2-columns", "read-index", "append", "read-appended"]
    ap.add_argument("op", choices=ops)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--times", type=int, default=5)
    ap.add_argument("--wait", type=float, default=0.0, help="seconds to sleep before the loop (to attach a profiler)")
    ap.add_argument("--path", default=os.path.join(os.path.dirname(__file__), "..", "scratch", "bench", "profile"))
    args = ap.parse_args()

    import floe

    shutil.rmtree(args.path, ignore_errors=True)
    lib = floe.Store(f"lmdb://{os.path.abspath(args.path)}").get_library("p", create_if_missing=True)
    extra = {"append": 1000 * args.times, "read-appended": 1000 * 1000}.get(args.op, 0)
    df = data.wide_float(args.rows + extra)
    base = df.iloc[: args.rows]
    table = pa.Table.from_pandas(base, preserve_index=True)
    if args.op not in ("write", "write-pandas"):
        lib.write("s", table, index_column="ts")
    if args.op == "read-appended":  # 1,000 appends of 1,000 rows first
        for i in range(1000):
            chunk = df.iloc[args.rows + i * 1000 : args.rows + (i + 1) * 1000]
            lib.append("s", pa.Table.from_pandas(chunk, preserve_index=True), index_column="ts")
    # A profiler can attach now and see only the operation: perf record -p <pid>.
    print(f"ready: pid {os.getpid()}", flush=True)
    time.sleep(args.wait)
    for i in range(args.times):
        release_free_memory()
        t = time.perf_counter()
        if args.op == "write":
            lib.write("s", table, index_column="ts", prune_previous_versions=True)
        elif args.op == "write-pandas":
            lib.write("s", base, prune_previous_versions=True)
        elif args.op in ("read", "read-appended"):
            out = lib.read("s", output_format="pyarrow").data
        elif args.op == "read-pandas":
            out = lib.read("s").data
        elif args.op == "read-2-columns":  # the index comes along
            out = lib.read("s", columns=list(base.columns[:2]), output_format="pyarrow").data
        elif args.op == "read-index":  # the index column alone
            out = lib.read("s", columns=[], output_format="pyarrow").data
        elif args.op == "append":
            chunk = df.iloc[args.rows + i * 1000 : args.rows + (i + 1) * 1000]
            lib.append("s", pa.Table.from_pandas(chunk, preserve_index=True), index_column="ts")
        print(f"{args.op} {i}: {time.perf_counter() - t:.4f} s", flush=True)
        out = None


if __name__ == "__main__":
    main()
