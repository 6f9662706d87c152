"""`wide` writes (10,000 rows x 1,000 float64) from pyarrow and from pandas in Floe and ArcticDB,
alternating with what LMDB alone and a plain file take to store the same bytes durably
(`backends/examples/lmdb_floor.rs`, one round per call after a warm-up round): medians and minima of
ROUNDS rounds, and the time 2x ArcticDB's throughput allows. Stores go in FOLDER (default
/tmp/floe-write-floor), on the disk being measured. Run from the repository root after
`cargo build --release -p floe-backends --example lmdb_floor`:
`.venv-bench/bin/python bench/probes/write_floor.py [ROUNDS] [FOLDER]`."""
import os, shutil, statistics, subprocess, sys, time
sys.path.insert(0, "bench")
import arcticdb, floe, pyarrow as pa
import data

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
folder = sys.argv[2] if len(sys.argv) > 2 else "/tmp/floe-write-floor"
exe = os.environ.get("FLOE_LMDB_FLOOR", "target/release/examples/lmdb_floor")
df = data.wide(10_000)
tbl = pa.Table.from_pandas(df)
shutil.rmtree(folder, ignore_errors=True)
lib = floe.Store(f"lmdb://{folder}/floe").get_library("w", create_if_missing=True)
alib = arcticdb.Arctic(f"lmdb://{folder}/arcticdb").get_library("w", create_if_missing=True)
lib.write("w", tbl)
alib.write("w", df)
res = {k: [] for k in ("floe (pyarrow in)", "floe (pandas in)", "arcticdb", "lmdb, txn per value", "lmdb, one txn", "file write+fdatasync")}
for _ in range(rounds):
    for name, f in (("floe (pyarrow in)", lambda: lib.write("w", tbl, prune_previous_versions=True)),
                    ("floe (pandas in)", lambda: lib.write("w", df, prune_previous_versions=True)),
                    ("arcticdb", lambda: alib.write("w", df, prune_previous_versions=True))):
        t = time.perf_counter(); f(); res[name].append(time.perf_counter() - t)
    # Floe's `wide` segments since D53: 32 of ~2.5 MB (the harness's LMDB floor, bench/worker.py).
    out = subprocess.run([exe, f"{folder}/lmdb", "32", "2500000", "1"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        for name, pat in (("lmdb, txn per value", "one transaction per value "), ("lmdb, one txn", "all values"), ("file write+fdatasync", "file:")):
            if pat in line:
                res[name].append(float(line.split("median")[1].split()[0]) / 1e3)
for name, xs in res.items():
    print(f"{name:22} median {statistics.median(xs) * 1e3:7.2f} ms  min {min(xs) * 1e3:7.2f} ms")
print(f"2x ArcticDB's throughput allows {statistics.median(res['arcticdb']) / 2 * 1e3:.2f} ms")
shutil.rmtree(folder, ignore_errors=True)
