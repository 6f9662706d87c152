"""Two builds of the extension module side by side, `read(as_of=0)` of one 10-row version among 200
to pyarrow with cold caches, as the harness's meta section meets it between other systems' calls: a
128 MB sweep of memory, `gc.collect()` and `malloc_trim` before each call; medians of 41 per child
process of the floor (a 10-row table over fresh memory, the harness's `fresh_table`), the extension's
call alone and the whole `Library.read`, the builds alternating over child processes. The other
build is a copy of the `floe` package directory (`cp -r pyarrow-bridge/python/floe DIR/` before
rebuilding), put first on the child's `sys.path`; both read the same store, /tmp/floe-cold-read-ab
(made the first time). Run from the repository root:
`.venv-bench/bin/python bench/probes/cold_read_ab.py ROUNDS DIR` (design/decisions.md D60)."""
import gc, os, statistics, sys, time

from ab_children import alternate

STORE = "/tmp/floe-cold-read-ab"

if sys.argv[1] == "--child":
    sys.path.insert(0, sys.argv[2])
    sys.path.insert(1, "bench")
    import numpy as np
    import pandas as pd
    import floe
    from measure import release_free_memory
    from worker import fresh_table

    lib = floe.Store(f"lmdb://{STORE}").get_library("p", create_if_missing=True)
    if not lib.has_symbol("ver"):
        frame = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10)}, index=pd.date_range("2024-01-01", periods=10))
        for _ in range(200):
            lib.write("ver", frame)
    sweep = np.ones(16 << 20)  # 128 MB, more than the machine's caches
    calls = {
        "floor": lambda: fresh_table(3, 10, 240, False),
        "extension": lambda: lib._lib.read("ver", (("version", 0), None, None, None)),
        "read": lambda: lib.read("ver", as_of=0, output_format="pyarrow"),
    }
    out = []
    for name, call in calls.items():
        call()
        xs = []
        for _ in range(41):
            sweep[::8] += 1.0  # one write per cache line
            gc.collect()
            release_free_memory()
            t = time.perf_counter_ns()
            call()
            xs.append(time.perf_counter_ns() - t)
        out.append(f"{name} {statistics.median(xs) / 1e3:.0f}")
    print(os.path.dirname(floe.__file__) + "|" + "|".join(out))
    sys.exit()

alternate(sys.argv[0], int(sys.argv[1]), sys.argv[2], "us")
