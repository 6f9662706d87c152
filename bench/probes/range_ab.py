"""Two builds of the extension module side by side on `ticks` reads of growing size: date ranges of 1,
10 and 100 row slices (100,000 rows each; 100 is the whole symbol) and a 10,000-row range, medians of
9 (30 for the small range) with fresh memory before each read, the builds alternating over child
processes. The other build is a copy of the `floe` package directory (`cp -r
pyarrow-bridge/python/floe DIR/` before rebuilding). Needs the store `ticks_shares.py` leaves in
/tmp/floe-tshare. Run from the repository root:
`.venv-bench/bin/python bench/probes/range_ab.py ROUNDS DIR` (design/decisions.md D40)."""
import os, statistics, subprocess, sys, time

if sys.argv[1] == "--child":
    sys.path.insert(0, "bench")
    import floe, pandas as pd
    from measure import release_free_memory

    lib = floe.Store("lmdb:///tmp/floe-tshare").get_library("p")
    idx = lib.read("t", columns=[], output_format="pyarrow").data.column("ts").to_numpy()

    def median_ms(first: int, rows: int, reps: int) -> float:
        dr = (pd.Timestamp(idx[first]), pd.Timestamp(idx[first + rows - 1]))
        xs = []
        for _ in range(reps):
            release_free_memory()
            t = time.perf_counter()
            lib.read("t", date_range=dr, output_format="pyarrow").data
            xs.append(time.perf_counter() - t)
        return statistics.median(xs) * 1e3

    figures = [median_ms(0 if k == 100 else 4_500_000, k * 100_000, 9 if k < 100 else 5) for k in (1, 10, 100)]
    print(*figures, median_ms(5_000_000, 10_000, 30))
    sys.exit()

rounds, other = int(sys.argv[1]), sys.argv[2]
res = {"other": [], "this": []}
for _ in range(rounds):
    for k in res:
        env = dict(os.environ, PYTHONPATH=other if k == "other" else "")
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
        res[k].append([float(x) for x in out.stdout.split()])
for k, rows in res.items():
    names = ["1 slice", "10 slices", "100 slices", "10,000 rows"]
    print(k, " | ".join(f"{n}: " + " ".join(f"{r[i]:.2f}" for r in rows) + " ms" for i, n in enumerate(names)))
