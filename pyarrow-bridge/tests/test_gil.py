"""The GIL is released around engine calls: two Python threads reading different symbols are inside
the engine at the same time, and a pure-Python thread keeps running while a read or write is in
progress."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import floe

ROWS = 3_000_000


@pytest.fixture
def big_lib(store_uri):
    if store_uri.startswith("s3://"):
        pytest.skip("needs large symbols; the loopback S3 server makes that slow")
    lib = floe.Store(store_uri).create_library("gil")
    rng = np.random.default_rng(0)
    for sym in ("one", "two"):
        df = pd.DataFrame(
            {"x": rng.normal(size=ROWS), "y": rng.normal(size=ROWS)},
            index=pd.date_range("2024-01-01", periods=ROWS, freq="1s", name="t", unit="ns"),
        )
        lib.write(sym, df)
    return lib


def test_two_threads_read_different_symbols_in_parallel(big_lib):
    """The spans are taken inside the Rust call, on the thread running the engine without the GIL:
    had the GIL been held, the two engine calls could not overlap at all."""
    barrier = threading.Barrier(2)
    spans: dict = {}

    def reader(symbol):
        barrier.wait()
        _, _, spans[symbol] = big_lib._read_debug(symbol)

    for attempt in range(3):  # the machine is shared: allow a retry if one thread was not scheduled
        threads = [threading.Thread(target=reader, args=(s,)) for s in ("one", "two")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (a0, a1), (b0, b1) = spans["one"], spans["two"]
        overlap = min(a1, b1) - max(a0, b0)
        if overlap > 0.3 * min(a1 - a0, b1 - b0):
            return
    pytest.fail(f"engine calls did not overlap: {spans}")


def _ticks_during(call) -> tuple:
    """How often a pure-Python thread looped while ``call`` ran, and how long the call took."""
    stop = threading.Event()
    ticks = [0]

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.02)
    before, t0 = ticks[0], time.perf_counter()
    call()
    elapsed = time.perf_counter() - t0
    during = ticks[0] - before
    stop.set()
    t.join()
    return during, elapsed


def _for_at_least(call, seconds: float):
    """``call`` run again until ``seconds`` have passed: a release build on a fast day can finish
    one in less time than the check below needs to tell a released GIL from a held one."""

    def run():
        t0 = time.perf_counter()
        call()
        while time.perf_counter() - t0 < seconds:
            call()

    return run


def test_python_threads_run_during_engine_calls(big_lib):
    table = pa.table({"x": np.arange(ROWS, dtype=np.float64), "y": np.arange(ROWS, dtype=np.float64)})
    calls = {
        # Several reads: one is too short to measure since outputs are huge-page mappings (D30).
        "read": lambda: [big_lib.read("one", output_format="pyarrow") for _ in range(4)],
        # Several writes and appends too: one write takes ~40 ms in a release build.
        "write": lambda: [big_lib.write("three", table) for _ in range(3)],
        "append": lambda: [big_lib.append("three", table) for _ in range(2)],
        "iter_batches": lambda: list(big_lib.iter_batches("one", output_format="pyarrow")),
    }
    # Calibration: time.sleep releases the GIL, so the spinner runs at full speed.
    ticks, elapsed = _ticks_during(lambda: time.sleep(0.1))
    rate = ticks / elapsed
    for name, call in calls.items():
        during, elapsed = _ticks_during(_for_at_least(call, 0.1))
        # Holding the GIL through the call, the spinner would only run in the switch intervals
        # around it (5 ms each): about 0.01 s worth of ticks. Released, it runs for most of the call
        # (sharing the cores with the engine's threads, so at a lower rate than calibrated).
        assert elapsed > 0.05, (name, elapsed)
        assert during > rate * 0.025, (name, during, rate, elapsed)
