"""The driver the two-build probes share (`small_reads_ab.py`, `wide_reads_ab.py`): each round runs the
calling script's child mode (`SCRIPT --child PACKAGE_DIR`) once with the other build's `floe` package
first on the child's `sys.path` and once with this checkout's, and prints the figures the child's last
line carries (`WHERE|figure|figure...`, WHERE being the package the child imported)."""
import os
import subprocess
import sys


def alternate(script: str, rounds: int, other: str, unit: str) -> None:
    builds = {"other": os.path.abspath(other), "this": os.path.abspath("pyarrow-bridge/python")}
    for r in range(rounds):
        for label, path in builds.items():
            line = subprocess.run(
                [sys.executable, script, "--child", path], capture_output=True, text=True, check=True
            ).stdout.strip().splitlines()[-1]
            where, *figures = line.split("|")
            print(f"round {r} {label:5} ({where}): " + ", ".join(f"{f} {unit}" for f in figures), flush=True)


def wide_library(store: str):
    """In a child: `floe` imported from the package directory given on the command line (first on
    `sys.path`, the harness's `bench/` after it), and library `w` of the LMDB store at `store`, whose
    symbol `wide` (10,000 rows x 1,000 floats, as the harness makes it) is written the first time.
    Returns `(floe module, library)`."""
    sys.path.insert(0, sys.argv[2])
    sys.path.insert(1, "bench")
    import data
    import floe

    lib = floe.Store(f"lmdb://{store}").get_library("w", create_if_missing=True)
    if not lib.has_symbol("wide"):
        lib.write("wide", data.make("wide", 10_000))
    return floe, lib
