"""The `ticks` full read and 10 % date range to pyarrow in the harness's own worker processes, the
systems read in the harness's rotation, with Floe's workers pinned (the default) and unpinned
(`FLOE_PIN_THREADS=0`) alternating by pool (D58). Arguments: rounds (default 3), repetitions per
round (default 9), systems (default floe,arcticdb,parquet,physical; `floe` alone for a loop of Floe's
reads). Run from the repository root: `.venv-bench/bin/python bench/probes/pinned_rotation.py 3 9`."""
import os
import shutil
import statistics
import sys

sys.path.insert(0, "bench")
import harness  # noqa: E402

ROWS = 10_000_000


def one_pool(systems, reps, workdir):
    """Medians (full read, 10 % range) of Floe's reads and the 10 % range's repetitions, in ms."""
    shutil.rmtree(workdir, ignore_errors=True)
    pool = harness.Pool(systems, workdir)
    try:
        for s in systems:
            pool.call(s, "open", dataset="ticks")
        for s in systems:
            if s != "physical":
                pool.call(s, "load", dataset="ticks", rows=ROWS)
                pool.call(s, "write", sym="data", drop=False)
        times = {"full": [], "10%": []}
        for name, args in (("full", {"fmt": "pyarrow"}), ("10%", {"fmt": "pyarrow", "date_range": (0.45, 0.55)})):
            for r in range(reps):
                k = r % len(systems)
                for s in systems[k:] + systems[:k]:
                    if s == "physical":  # the harness's floor of the 10 % range (none for ticks' full read)
                        if name == "10%":
                            pool.call(s, "fresh_table", cols=5, rows=ROWS // 10, bytes=32_400_000)
                        continue
                    reply = pool.call(s, "read", **args)
                    if s == "floe":
                        times[name].append(reply["s"] * 1e3)
        return statistics.median(times["full"]), statistics.median(times["10%"]), times["10%"]
    finally:
        pool.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    systems = (sys.argv[3] if len(sys.argv) > 3 else "floe,arcticdb,parquet,physical").split(",")
    workdir = os.path.join("scratch", "probe-pinned-rotation")
    for _ in range(rounds):
        for pin in ("1", "0"):
            os.environ["FLOE_PIN_THREADS"] = pin  # the workers inherit it
            full, part, all_part = one_pool(systems, reps, workdir)
            label = "pinned  " if pin == "1" else "unpinned"
            print(f"{label} full {full:.1f} ms, 10 % {part:.2f} ms ({part / (0.1 * full):.2f}x its share);"
                  f" 10 % repetitions {', '.join(f'{x:.1f}' for x in all_part)}", flush=True)


if __name__ == "__main__":
    main()
