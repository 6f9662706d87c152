"""Two builds of the extension module side by side on repeated writes of one Arrow table (e.g. `wide`
saved as an Arrow IPC file, so that data generation stays out of the process): wall time and CPU time
(`getrusage`) per write, medians of 20 per child process, the builds alternating over child
processes. The other build is a copy of the `floe` package directory (`cp -r
pyarrow-bridge/python/floe DIR/` before rebuilding). Run from the repository root:
`.venv-bench/bin/python bench/probes/write_cpu_ab.py TABLE.arrow ROUNDS DIR` (design/decisions.md D47).
To make the `wide` file: `pa.ipc.new_file(path, t.schema).write_table(t)` of
`pa.Table.from_pandas(data.wide(10_000))`."""
import os, sys, subprocess, statistics
if sys.argv[1] == "--child":
    import time, tempfile, shutil, resource
    sys.path.insert(0, "bench")
    import floe, pyarrow as pa
    tbl = pa.ipc.open_file(sys.argv[2]).read_all()
    path = tempfile.mkdtemp(dir="/tmp")
    lib = floe.Store(f"lmdb://{path}").get_library("w", create_if_missing=True)
    lib.write("w", tbl)
    cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))
    ws, cs = [], []
    for _ in range(20):
        c0 = cpu(); t0 = time.perf_counter(); lib.write("w", tbl, prune_previous_versions=True); ws.append(time.perf_counter() - t0); cs.append(cpu() - c0)
    shutil.rmtree(path)
    print(statistics.median(ws) * 1e3, statistics.median(cs) * 1e3)
    sys.exit()
arrow, rounds, other = sys.argv[1], int(sys.argv[2]), sys.argv[3]
res = {"other": [], "this": []}
for _ in range(rounds):
    for k, p in (("other", other), ("this", "")):
        out = subprocess.run([sys.executable, __file__, "--child", arrow], env=dict(os.environ, PYTHONPATH=p), capture_output=True, text=True, check=True).stdout.split()
        res[k].append((float(out[0]), float(out[1])))
for k, v in res.items():
    print(k, "wall", " ".join(f"{w:.1f}" for w, _ in v), "ms | cpu", " ".join(f"{c:.1f}" for _, c in v), "ms")
