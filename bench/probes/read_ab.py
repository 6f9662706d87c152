"""Two builds of the extension module side by side, reading: full reads of a dataset to pyarrow and to
pandas, medians of 7 per child process (collection and `malloc_trim` before each read, as the
harness does), the builds alternating over child processes. The other build is a copy of the `floe`
package directory (`cp -r pyarrow-bridge/python/floe DIR/` before rebuilding), put first on the
child's `PYTHONPATH`; both read the same store. Run from the repository root:
`.venv-bench/bin/python bench/probes/read_ab.py DATASET ROWS ROUNDS DIR` (design/decisions.md D39)."""
import os, statistics, subprocess, sys, time, zlib

if sys.argv[1] == "--child":
    sys.path.insert(0, "bench")
    import data, floe
    from measure import release_free_memory

    name, rows = sys.argv[2], int(sys.argv[3])
    # Each build reads a store it wrote itself (an encoder change shows in the reads too).
    build = zlib.crc32(os.path.dirname(floe.__file__).encode()) % 10_000
    lib = floe.Store(f"lmdb:///tmp/floe-read-ab-{name}-{rows}-{build}").get_library("p", create_if_missing=True)
    if not lib.has_symbol("s"):
        lib.write("s", data.make(name, rows))
    figures = []
    for fmt in ("pyarrow", "pandas"):
        xs = []
        for _ in range(7):
            release_free_memory()
            t = time.perf_counter()
            r = lib.read("s", output_format=fmt).data
            xs.append(time.perf_counter() - t)
            del r
        figures.append(statistics.median(xs))
    print(*figures)
    sys.exit()

name, rows, rounds, other = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
builds = {"other": other, "this": ""}
res = {k: [] for k in builds}
for _ in range(rounds):
    for k, path in builds.items():
        out = subprocess.run([sys.executable, __file__, "--child", name, rows], env=dict(os.environ, PYTHONPATH=path),
                             capture_output=True, text=True, check=True).stdout.split()
        res[k].append([float(x) for x in out])
for k, xs in res.items():
    print(k, "to pyarrow", " ".join(f"{x[0]*1e3:.0f}" for x in xs), "ms | to pandas", " ".join(f"{x[1]*1e3:.0f}" for x in xs), "ms")
