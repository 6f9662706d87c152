"""Floe demo: a realistic 10-million-row quote series, from pandas, on LMDB in a local folder.

Writes 9M rows, appends 1M more, reads everything back (pandas and zero-copy pyarrow), reads a date
range with a column subset, lists versions and reads the old version, verifies every stored block of
the latest, printing one line per step.

    python pyarrow-bridge/examples/demo.py [--rows 10000000] [--path scratch/demo-lmdb]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd

import floe

_T0 = time.perf_counter()


def say(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.2f}s] {msg}", flush=True)


class Step:
    """Times a step and prints its line when it ends."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "Step":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0

    def report(self, detail: str = "") -> None:
        say(f"{self.name:<44} {self.seconds:7.3f} s  {detail}")


def quotes(n: int, seed: int = 42) -> pd.DataFrame:
    """A day-by-day quote series for one instrument: irregular nanosecond timestamps during trading
    hours, a random-walk mid price, spreads, sizes, venue (categorical) and a trade flag."""
    rng = np.random.default_rng(seed)
    # ~60k quotes per 6.5-hour session, Poisson arrivals, sessions on consecutive weekdays.
    per_day = 60_000
    days = pd.bdate_range("2024-01-02", periods=(n + per_day - 1) // per_day).as_unit("ns")
    gaps = rng.exponential(6.5 * 3600e9 / per_day, n).astype(np.int64) + 1
    within = np.cumsum(gaps)
    day_of = np.arange(n) // per_day
    opens = (days + pd.Timedelta(hours=9.5)).tz_localize("America/New_York").tz_convert("UTC").asi8
    start_of_day = opens[day_of]
    first_in_day = np.r_[0, np.flatnonzero(np.diff(day_of)) + 1]
    # Restart the running sum at each session open.
    offsets = within - np.repeat(within[first_in_day] - gaps[first_in_day], np.diff(np.r_[first_in_day, n]))
    ts = pd.DatetimeIndex(start_of_day + offsets, name="time").tz_localize("UTC").tz_convert("America/New_York")
    mid = 187.0 + np.cumsum(rng.normal(0, 0.004, n))
    spread = np.round(rng.gamma(2.0, 0.005, n), 4) + 0.01
    return pd.DataFrame(
        {
            "bid": np.round(mid - spread / 2, 4),
            "ask": np.round(mid + spread / 2, 4),
            "bid_size": rng.integers(1, 50, n, dtype=np.int32) * 100,
            "ask_size": rng.integers(1, 50, n, dtype=np.int32) * 100,
            "volume": rng.poisson(300, n).astype(np.int64),
            "venue": pd.Categorical.from_codes(rng.integers(0, 5, n), ["XNAS", "XNYS", "ARCX", "BATS", "IEXG"]),
            "is_trade": rng.random(n) < 0.1,
        },
        index=ts,
    )


def same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Exact equality (values, dtypes, index, tz, categories), vectorized: pandas'
    assert_frame_equal takes minutes on 10M-row categorical, tz-aware frames."""
    assert list(a.columns) == list(b.columns) and a.dtypes.equals(b.dtypes), (a.dtypes, b.dtypes)
    assert a.index.dtype == b.index.dtype and a.index.name == b.index.name
    assert np.array_equal(a.index.asi8, b.index.asi8)
    for c in a.columns:
        x, y = a[c].array, b[c].array
        if isinstance(x, pd.Categorical):
            assert list(x.categories) == list(y.categories) and np.array_equal(x.codes, y.codes), c
        else:
            assert np.array_equal(np.asarray(x), np.asarray(y)), c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--path", default="scratch/demo-lmdb", help="LMDB folder (recreated)")
    args = ap.parse_args()
    n, first = args.rows, args.rows * 9 // 10

    say(f"floe {floe.__version__}; pandas {pd.__version__}; {os.cpu_count()} cores")
    with Step("generate quotes (pandas, numpy)") as s:
        df = quotes(n)
    mb = df.memory_usage(index=True, deep=False).sum() / 1e6
    s.report(f"{n:,} rows x {df.shape[1]} columns, {mb:,.0f} MB in pandas")

    shutil.rmtree(args.path, ignore_errors=True)
    uri = f"lmdb://{os.path.abspath(args.path)}"
    store = floe.Store(uri)
    lib = store.create_library("market_data")
    say(f"store {store.get_uri()}, library {lib.name!r}")

    with Step(f"write {first:,} rows (version 0)") as s:
        lib.write("AAPL", df.iloc[:first], metadata={"source": "demo", "rows": first})
    s.report(f"{first / s.seconds / 1e6:6.2f} M rows/s  {mb * first / n / s.seconds:7.0f} MB/s")

    with Step(f"append {n - first:,} rows (version 1)") as s:
        lib.append("AAPL", df.iloc[first:], metadata={"source": "demo", "rows": n})
    s.report(f"{(n - first) / s.seconds / 1e6:6.2f} M rows/s")

    with Step("read all as pandas") as s:
        back = lib.read("AAPL").data
    s.report(f"{n / s.seconds / 1e6:6.2f} M rows/s  {mb / s.seconds:7.0f} MB/s")
    with Step("check: equal to the input, exactly") as s:
        same_frame(back, df)
    s.report("values, dtypes, index, tz, categories")
    del back

    with Step("read all as pyarrow (zero-copy hand-over)") as s:
        table = lib.read("AAPL", output_format="pyarrow").data
    s.report(f"{n / s.seconds / 1e6:6.2f} M rows/s  {table.nbytes / 1e6 / s.seconds:7.0f} MB/s")
    del table

    lo, hi = df.index[n // 2], df.index[n // 2] + pd.Timedelta(hours=1)
    with Step("read 1 hour, columns bid/ask") as s:
        window = lib.read("AAPL", date_range=(lo, hi), columns=["bid", "ask"]).data
    expected = df.loc[lo:hi, ["bid", "ask"]]
    same_frame(window, expected)
    s.report(f"{len(window):,} rows, {window.index[0]} .. {window.index[-1].time()}")

    with Step("tail(5)") as s:
        tail = lib.tail("AAPL", 5).data
    s.report(f"last quote at {tail.index[-1]}")

    with Step("list_versions") as s:
        versions = lib.list_versions("AAPL")
    s.report(", ".join(f"v{k.version} @ {v.date.strftime('%H:%M:%S.%f')}" for k, v in versions.items()))

    with Step("read version 0 (before the append)") as s:
        old = lib.read("AAPL", as_of=0)
    s.report(f"{len(old.data):,} rows, metadata {old.metadata}")
    same_frame(old.data, df.iloc[:first])

    with Step("verify every stored block (latest)") as s:
        v = lib.verify("AAPL")
    s.report(f"{v.segments} segments, {v.bytes / 1e6:,.0f} MB checked, {v.bytes / 1e6 / s.seconds:7.0f} MB/s")

    d = lib.get_description("AAPL")
    # Allocated blocks, not apparent sizes: LMDB's data file may be sparse.
    disk = sum(os.stat(os.path.join(r, f)).st_blocks * 512 for r, _, fs in os.walk(args.path) for f in fs)
    say(f"description: {d.row_count:,} rows in {d.segment_count} segments, {d.date_range[0]} .. {d.date_range[1]}")
    say(f"on disk: {disk / 1e6:,.0f} MB in {args.path} ({mb / max(disk / 1e6, 1e-9):.1f}x smaller than in pandas)")
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
