"""Full reads to pyarrow and pandas with and without huge-page output buffers (design/decisions.md D30,
D35): the same build, `FLOE_HUGE_PAGES=1` (huge pages always), `=0` (the allocator's 4 KiB pages) and
the default (huge pages unless a virtio balloon reports free pages to the host: mappings with 4 KiB
pages) in alternating child processes (the switch is read once per process), each read measured as the harness measures it (collection and `malloc_trim` first, so every
read pays for fresh memory), optionally after a pause before each read (on a VM whose balloon reports
free memory to the host, ~2 s later, memory freed that long ago must come back from the host at the
next touch). Run from the repository root with the bench environment:
`.venv-bench/bin/python bench/probes/huge_pages.py [rounds] [pause seconds]`."""
import os, shutil, statistics, subprocess, sys, time

CASES = [("wide-float", 10_000_000), ("ticks", 10_000_000), ("wide-float", 1_000_000)]


def child(name: str, rows: int, pause: float) -> None:
    sys.path.insert(0, "bench")
    import data, floe
    from measure import measure

    path = f"/tmp/floe-probe-huge-{name}-{rows}"
    lib = floe.Store(f"lmdb://{path}").get_library("p", create_if_missing=True)
    if not lib.has_symbol("s"):
        lib.write("s", data.make(name, rows))
    for fmt in ("pyarrow", "pandas"):
        xs, peaks = [], []
        for _ in range(7):
            time.sleep(pause)
            figures, r = measure(lambda: lib.read("s", output_format=fmt).data)
            del r
            xs.append(figures["s"])
            peaks.append(figures["peak_mb"])
        med = statistics.median(xs)
        print(f"{fmt} {med * 1e3:.1f} {max(xs) / med:.2f} {statistics.median(peaks):.0f}")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    pause = sys.argv[2] if len(sys.argv) > 2 else "0"
    for name, rows in CASES:
        shutil.rmtree(f"/tmp/floe-probe-huge-{name}-{rows}", ignore_errors=True)
        results = {}
        for _ in range(rounds):
            for huge in ("1", "0", "default"):
                env = {k: v for k, v in os.environ.items() if k != "FLOE_HUGE_PAGES"}
                if huge != "default":
                    env["FLOE_HUGE_PAGES"] = huge
                out = subprocess.run(
                    [sys.executable, __file__, "--child", name, str(rows), pause], env=env, check=True, capture_output=True, text=True
                ).stdout
                for line in out.splitlines():
                    fmt, ms, spread, peak = line.split()
                    results.setdefault((fmt, huge), []).append((float(ms), float(spread), peak))
        for fmt in ("pyarrow", "pandas"):
            on, off, default = results[(fmt, "1")], results[(fmt, "0")], results[(fmt, "default")]
            show = lambda rs: ", ".join(f"{ms:.1f} ms (max/med {sp:.2f}, +{pk} MB)" for ms, sp, pk in rs)
            print(f"{name} {rows:,} -> {fmt}: huge pages {show(on)}; allocator {show(off)}; default {show(default)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
