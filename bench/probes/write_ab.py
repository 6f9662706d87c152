"""Two builds of the extension module side by side: the `ticks` (or any dataset's) write from pyarrow
and from pandas, medians of 5 writes per child process (collection and `malloc_trim` first), the
builds alternating over child processes, with the store's size after one write. The other build is a
copy of the `floe` package directory (`cp -r pyarrow-bridge/python/floe DIR/` before rebuilding),
put first on the child's `PYTHONPATH`. Run from the repository root:
`.venv-bench/bin/python bench/probes/write_ab.py DATASET ROWS ROUNDS DIR` (design/decisions.md D38). Each write
is taken by the harness's `measure`, so its peak memory (MB above the resident size before it) is
shown beside its time (D41)."""
import os, sys, subprocess, statistics, time
if sys.argv[1] == "--child":
    sys.path.insert(0, "bench")
    import tempfile, shutil, pyarrow as pa, data, floe
    from measure import measure
    name = sys.argv[2]
    df = data.make(name, int(sys.argv[3]))
    table = pa.Table.from_pandas(df, preserve_index=True)
    table = table.select(["ts", *[c for c in table.column_names if c != "ts"]])
    d = tempfile.mkdtemp(dir="/tmp")
    lib = floe.Store(f"lmdb://{d}").get_library("p", create_if_missing=True)
    lib.write("a", table, index_column="ts")
    size = sum(os.stat(os.path.join(r, f)).st_blocks * 512 for r, _, fs in os.walk(d) for f in fs)
    xs = []; ys = []
    for _ in range(5):
        xs.append(measure(lambda: lib.write("a", table, index_column="ts", prune_previous_versions=True))[0])
        ys.append(measure(lambda: lib.write("b", df, prune_previous_versions=True))[0])
    shutil.rmtree(d)
    med = lambda figs, k: statistics.median(f[k] for f in figs)
    print(med(xs, "s"), med(ys, "s"), size, floe.__file__, med(xs, "peak_mb"), med(ys, "peak_mb"))
    sys.exit()
name, rows = sys.argv[1], sys.argv[2]
variants = {"other": sys.argv[4], "this": ""}
res = {k: [] for k in variants}
for r in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3):
    for k, pp in variants.items():
        env = dict(os.environ, PYTHONPATH=pp)
        out = subprocess.run([sys.executable, __file__, "--child", name, rows], env=env, capture_output=True, text=True, check=True).stdout.split()
        res[k].append((float(out[0]), float(out[1]), int(out[2]), out[3], float(out[4]), float(out[5])))
for k, xs in res.items():
    print(k, xs[0][3], "pyarrow in", " ".join(f"{x[0]*1e3:.0f} ms +{x[4]:.0f} MB" for x in xs),
          "| pandas in", " ".join(f"{x[1]*1e3:.0f} ms +{x[5]:.0f} MB" for x in xs), "| size MB", xs[0][2] / 1e6)
