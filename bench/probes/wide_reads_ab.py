"""Two builds of the extension module side by side, `wide` (10,000 rows x 1,000 float columns) reads
to pyarrow: whole, a 10 % and a 0.1 % row range, 10 of the 1,000 columns; each timed warm (back to
back) and fresh (`gc.collect()` and `malloc_trim` before each read, as the harness does); medians
per child process (20 reads whole, 40 otherwise), the builds alternating over child processes. The
other build is a copy of the `floe` package directory (`cp -r pyarrow-bridge/python/floe DIR/` before
rebuilding), put first on the child's `sys.path`; both read the same store, /tmp/floe-wide-reads-ab
(made the first time). Run from the repository root:
`.venv-bench/bin/python bench/probes/wide_reads_ab.py ROUNDS DIR` (design/decisions.md D54)."""
import gc, os, statistics, sys, time

from ab_children import alternate, wide_library

STORE = "/tmp/floe-wide-reads-ab"

if sys.argv[1] == "--child":
    floe, lib = wide_library(STORE)
    from measure import release_free_memory

    reads = {
        "whole": (20, {}),
        "10 %": (40, dict(row_range=(4500, 5500))),
        "0.1 %": (40, dict(row_range=(5000, 5010))),
        "10 columns": (40, dict(columns=[f"c{i}" for i in range(0, 1000, 100)])),
    }
    out = []
    for name, (n, args) in reads.items():
        for fresh in (False, True):
            xs = []
            for _ in range(n):
                if fresh:
                    gc.collect()
                    release_free_memory()
                t = time.perf_counter()
                r = lib.read("wide", output_format="pyarrow", **args)
                xs.append(time.perf_counter() - t)
                del r
            out.append(f"{name} {'fresh' if fresh else 'warm'} {statistics.median(xs) * 1e3:.2f}")
    print(os.path.dirname(floe.__file__) + "|" + "|".join(out))
    sys.exit()

alternate(__file__, int(sys.argv[1]), sys.argv[2], "ms")
