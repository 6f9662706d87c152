"""Two builds of the extension module side by side, small reads of `wide` (10,000 rows x 1,000 float
columns, segments of 10 MB) to pyarrow: one column, 10 columns spread over all 8 segments, 50
columns, and 1 % and 0.1 % row ranges of every column, each timed warm (back to back) and after
`gc.collect()` (the harness's state for small calls: rayon's workers asleep, caches cold); medians of
60 per child process, the builds alternating over child processes. The other build is a copy of the
`floe` package directory (`cp -r pyarrow-bridge/python/floe DIR/` before rebuilding), put first on
the child's `sys.path`; both read the same store, /tmp/floe-small-reads-ab (made the first time).
Run from the repository root: `.venv-bench/bin/python bench/probes/small_reads_ab.py ROUNDS DIR`
(design/decisions.md D50)."""
import gc, os, statistics, sys, time

from ab_children import alternate, wide_library

STORE = "/tmp/floe-small-reads-ab"

if sys.argv[1] == "--child":
    floe, lib = wide_library(STORE)

    reads = {
        "1 column": dict(columns=["c0"]),
        "10 columns": dict(columns=[f"c{i}" for i in range(0, 1000, 100)]),
        "50 columns": dict(columns=[f"c{i}" for i in range(0, 1000, 20)]),
        "1 % of rows": dict(row_range=(5000, 5100)),
        "0.1 % of rows": dict(row_range=(5000, 5010)),
    }
    out = []
    for name, args in reads.items():
        for collect in (False, True):
            xs = []
            for _ in range(60):
                if collect:
                    gc.collect()
                t = time.perf_counter()
                lib.read("wide", output_format="pyarrow", **args)
                xs.append(time.perf_counter() - t)
            out.append(f"{name} {'gc' if collect else 'warm'} {statistics.median(xs) * 1e6:.0f}")
    print(os.path.dirname(floe.__file__) + "|" + "|".join(out))
    sys.exit()

alternate(__file__, int(sys.argv[1]), sys.argv[2], "µs")
