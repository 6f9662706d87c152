"""What a pause costs the next small call: medians over 30 rounds of three calls in a row after a busy
spin of 0, 0.5, 2 and 10 ms (a spin, not a sleep, so the thread keeps its core; `gc.collect()` before
a call, as the harness does, is such a pause). On this project's VM the first call after 10 ms took
20-30x its warm time while the second was back near it (bench/RESULTS.md, `read(as_of=0)`). Run from
the repository root with the bench environment: `.venv-bench/bin/python bench/probes/pause_cost.py`."""
import statistics, sys, time, json
sys.path.insert(0, "bench")
import numpy as np, pyarrow as pa

small = np.ones(128)
cases = {
    "pa.table of 2 ints": lambda: pa.table({"a": [1, 2]}),
    "np.sum of 128 floats": lambda: small.sum(),
    "json.dumps of 30 ints": lambda: json.dumps({"a": [1, 2, 3] * 10}),
}
if len(sys.argv) > 1:  # a floe store path with a symbol "ver" (bench/probes/small_reads.py makes one)
    import floe
    lib = floe.Store(f"lmdb://{sys.argv[1]}").get_library("p")
    cases["floe read(as_of=0) -> pyarrow"] = lambda: lib.read("ver", as_of=0, output_format="pyarrow")


def spin(seconds: float) -> None:
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        pass


for name, f in cases.items():
    for pause in (0, 0.0005, 0.002, 0.01):
        rounds = []
        for _ in range(30):
            spin(pause)
            xs = []
            for _ in range(3):
                t0 = time.perf_counter()
                f()
                xs.append(time.perf_counter() - t0)
            rounds.append(xs)
        calls = [f"{statistics.median(r[i] for r in rounds) * 1e6:.0f}" for i in range(3)]
        print(f"{name}, after {pause * 1e3:g} ms: calls 1, 2, 3 took {', '.join(calls)} us")
