"""The checksum target's two sides outside the harness: CPU of a full read to pyarrow against CPU of
`Library.verify` of the same version, on the calling thread and in parallel (rayon's idle workers
spin a while before they sleep, and that CPU counts too), for `wide` and 2M rows of `wide-float`;
medians of 15 alternating calls with `measure` (fresh memory first). Run from the repository root:
`.venv-bench/bin/python bench/probes/verify_share.py` (design/decisions.md D61)."""
import sys, statistics, shutil
sys.path.insert(0, "bench")
import data, floe
from measure import measure
for name, rows in (("wide", 10_000), ("wide-float", 2_000_000)):
    path = f"/tmp/floe-vs-{name}"
    shutil.rmtree(path, ignore_errors=True)
    lib = floe.Store(f"lmdb://{path}").get_library("p", create_if_missing=True)
    df = data.make(name, rows); lib.write("w", df); del df
    r, vs, vp = [], [], []
    for _ in range(15):
        f, out = measure(lambda: lib.read("w", output_format="pyarrow").data); r.append(f["cpu_s"]); del out
        f, _ = measure(lambda: lib.verify("w", parallel=False)); vs.append(f["cpu_s"])
        f, _ = measure(lambda: lib.verify("w")); vp.append(f["cpu_s"])
    m = statistics.median
    print(f"{name}: read {m(r)*1e3:.2f} ms CPU, verify serial {m(vs)*1e3:.2f} ({m(vs)/m(r):.1%}), parallel {m(vp)*1e3:.2f} ({m(vp)/m(r):.1%})")
